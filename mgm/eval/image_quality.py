"""Class-conditional image quality judged by a trained classifier.

- conditional accuracy: the share of samples generated for class c that the classifier assigns to c;
- within-class diversity: mean pairwise distance of the classifier's features between samples of the
  same class, reported beside the same figure for real images (a model that repeats one image per
  class scores 0 there, however accurate it is).
"""

from __future__ import annotations

import torch

from mgm.eval.classifier import ImageClassifier


@torch.no_grad()
def classify(classifier, inputs: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Any embedded-data judge (``features`` + ``head``: ImageClassifier on images [M, 3, S, S] in
    [0, 1], AudioClassifier on clips [M, C, T] at its rate) -> (predicted labels [M], features [M, F])."""
    device = next(classifier.parameters()).device
    preds, feats = [], []
    for chunk in inputs.split(batch_size):
        features = classifier.features(chunk.to(device))
        preds.append(classifier.head(features).argmax(-1).cpu())
        feats.append(features.cpu())
    return torch.cat(preds), torch.cat(feats)


def within_class_diversity(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the mean pairwise Euclidean distance between features of that class."""
    per_class = []
    for c in labels.unique():
        f = features[labels == c].double()
        if len(f) < 2:
            continue
        d = torch.cdist(f, f)
        per_class.append(d.sum() / (len(f) * (len(f) - 1)))
    return float(torch.stack(per_class).mean())


def image_quality(classifier: ImageClassifier, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """{"accuracy", "diversity"} of images [M, 3, S, S] meant to show classes ``labels`` [M]."""
    preds, features = classify(classifier, images)
    return {
        "accuracy": float((preds == labels.cpu()).float().mean()),
        "diversity": within_class_diversity(features, labels.cpu()),
    }
