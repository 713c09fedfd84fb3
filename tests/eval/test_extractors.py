import pytest
import torch

from mgm.eval import ImageClassifier, feature_statistics, frechet_distance
from mgm.eval.extractors import EncodecEmbedder, InceptionFID, JudgeFeatures
from mgm.tokenizers import EncodecTokenizer


def test_encodec_embedder_gives_one_row_per_frame_and_resamples():
    torch.manual_seed(0)
    embedder = EncodecEmbedder(EncodecTokenizer.small())
    clips = torch.rand(3, 1, 8000) * 2 - 1  # 1 s at 8 kHz: 50 frames
    frames = embedder(clips)
    assert frames.shape == (3 * 50, 64)
    # The same clips given at 16 kHz are resampled to the codec's 8 kHz first.
    assert embedder(torch.rand(2, 2, 16000) * 2 - 1, sample_rate=16000).shape == (2 * 50, 64)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        embedder(clips * 3)


def test_fid_through_torchmetrics_with_a_given_extractor_matches_ours():
    torch.manual_seed(0)
    judge = ImageClassifier(num_classes=3, width=8).eval()
    real, fake = torch.rand(40, 3, 16, 16), torch.rand(40, 3, 16, 16) ** 2
    fid = InceptionFID(JudgeFeatures(judge), input_size=(3, 16, 16))
    fid.update(real, real=True).update(fake, real=False)
    with torch.no_grad():
        ours = frechet_distance(*feature_statistics(judge.features(real)), *feature_statistics(judge.features(fake)))
    assert fid.compute() == pytest.approx(ours, rel=1e-4)
    with pytest.raises(ValueError, match=r"float in \[0, 1\]"):
        fid.update((fake * 255).to(torch.uint8), real=False)
    with pytest.raises(ValueError, match=r"values span"):
        fid.update(fake * 2, real=False)


def test_inception_fid_says_what_it_needs_when_it_cannot_load():
    # Here (offline, no torch-fidelity) the default Inception cannot be built; the message says why.
    try:
        InceptionFID()
    except ImportError as e:
        assert "mgm[eval]" in str(e)
    except RuntimeError as e:
        assert "Inception weights" in str(e)
    else:
        pytest.skip("Inception FID weights are available here")
