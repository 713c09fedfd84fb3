import pytest
import torch

from mgm.eval import AudioClassifier


def test_shapes_stereo_resampling_and_round_trip(tmp_path):
    torch.manual_seed(0)
    clf = AudioClassifier(num_classes=3, sample_rate=8000, n_mels=32, width=8).eval()
    clips = torch.rand(4, 1, 8000) * 2 - 1
    with torch.no_grad():
        assert clf(clips).shape == (4, 3) and clf.features(clips).shape == (4, 32)
        # Stereo is averaged to mono; a clip at 16 kHz is resampled to the model's 8 kHz.
        torch.testing.assert_close(clf.features(clips.expand(-1, 2, -1)), clf.features(clips))
        upsampled = torch.nn.functional.interpolate(clips, scale_factor=2, mode="linear")
        assert clf.features(upsampled, sample_rate=16000).shape == (4, 32)
    clf.save_pretrained(tmp_path / "clf")
    loaded = AudioClassifier.from_pretrained(tmp_path / "clf").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(clips), clf.features(clips))


@pytest.mark.parametrize(
    "audio, rate, match",
    [(torch.zeros(2, 8000), None, r"\[B, C, T\]"), (torch.zeros(1, 1, 100), None, "100 samples"),
     (torch.zeros(1, 1, 8000), 0, "sample_rate=0")],
)  # fmt: skip
def test_bad_input(audio, rate, match):
    with pytest.raises(ValueError, match=match):
        AudioClassifier(num_classes=2, width=8).features(audio, sample_rate=rate)


def test_shipped_tones_judge_classifies_held_out_clips():
    from mgm.data.tones import make_tones
    from mgm.eval.image_quality import classify
    from mgm.pipelines.audio import DEFAULT_AUDIO_PIPELINE

    judge = AudioClassifier.from_pretrained(DEFAULT_AUDIO_PIPELINE.parent / "tones_classifier").eval()
    labels = torch.arange(64) % 8
    clips, _ = make_tones(64, 2.0, 8000, seed=2, labels=labels)  # the judge trained on seed 1
    predicted, features = classify(judge, clips)
    # Measured 64 / 64. At p = 1 the binomial SE is 0, so 4 SEs below is 1.0; one miss is allowed
    # for a borderline clip on another BLAS build.
    assert (predicted == labels).float().mean() >= 63 / 64 and features.shape == (64, 64)
