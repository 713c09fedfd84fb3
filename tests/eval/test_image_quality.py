import torch

from mgm.eval import ImageClassifier, image_quality, within_class_diversity


def test_diversity_is_zero_for_repeats_and_grows_with_spread():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    repeats = torch.tensor([[1.0, 2.0]] * 3 + [[5.0, 5.0]] * 3)
    assert within_class_diversity(repeats, labels) == 0
    spread = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    # class 0: pairwise distances 5, 0, 5 -> mean 10/3; class 1: 0 -> mean over classes 5/3
    assert abs(within_class_diversity(spread, labels) - 5 / 3) < 1e-9


def test_image_quality_reports_accuracy_against_the_classifier():
    torch.manual_seed(0)
    classifier = ImageClassifier(num_classes=3, width=8).eval()
    images = torch.rand(12, 3, 16, 16)
    with torch.no_grad():
        predicted = classifier(images).argmax(-1)
    assert image_quality(classifier, images, predicted)["accuracy"] == 1.0
    assert image_quality(classifier, images, (predicted + 1) % 3)["accuracy"] == 0.0
