import numpy as np
import pytest
import torch
import torchaudio

from mgm.data.tones import make_tones
from mgm.eval.frechet import FeatureStatistics
from mgm.eval.vggish import (
    VGGish,
    VGGishEmbedder,
    VGGishPCA,
    hertz_to_mel,
    log_mel_examples,
    mel_filterbank,
)

# The keys of torchvggish's state dict (features: conv/ReLU/pool in nn.Sequential order).
PORT_KEYS = [
    f"{part}.{index}.{kind}"
    for part, indices in (("features", (0, 3, 6, 8, 11, 13)), ("embeddings", (0, 2, 4)))
    for index in indices
    for kind in ("weight", "bias")
]


@pytest.fixture(scope="module")
def vggish() -> VGGish:
    torch.manual_seed(0)
    return VGGish().eval()


@pytest.fixture(scope="module")
def checkpoint(vggish, tmp_path_factory):
    path = tmp_path_factory.mktemp("vggish") / "vggish.pth"
    torch.save(vggish.state_dict(), path)
    return path


def test_front_end_gives_96_frames_of_64_bands_per_example_between_125_and_7500_hz():
    weights = mel_filterbank()  # [257 FFT bins, 64 bands]
    assert weights.shape == (257, 64) and not weights[0].any()  # the DC bin is dropped
    hertz = torch.linspace(0, 8000, 257, dtype=torch.float64)
    used = hertz[weights.sum(1) > 0]
    bin_width = 8000 / 256
    assert 125 < used.min() <= 125 + bin_width and 7500 - bin_width <= used.max() < 7500
    assert float(hertz_to_mel(700 * (np.e - 1))) == pytest.approx(1127)  # HTK: 1127 ln(1 + f / 700)
    # A sine at the centre of band 20 (centres equally spaced in mel over 125-7500 Hz) peaks there.
    centres_mel = torch.linspace(float(hertz_to_mel(125)), float(hertz_to_mel(7500)), 66, dtype=torch.float64)[1:-1]
    centre = float(700 * torch.expm1(centres_mel[20] / 1127))
    t = torch.arange(16000) / 16000
    examples = log_mel_examples(0.5 * torch.sin(2 * torch.pi * centre * t)[None])
    assert examples.shape == (1, 1, 96, 64)  # 1 s at 16 kHz: one 0.96 s example
    assert int(examples.mean((0, 1, 2)).argmax()) == 20
    assert log_mel_examples(torch.zeros(2, 32000)).shape == (2, 2, 96, 64)
    # A clip shorter than an example is padded with silence: log(0 + 0.01) after its end.
    short = log_mel_examples(0.5 * torch.sin(2 * torch.pi * 440 * t[:8000])[None])
    assert short.shape == (1, 1, 96, 64) and torch.allclose(short[0, 0, 60:], torch.tensor(0.01).log())


def test_network_keys_and_output_match_the_port(vggish):
    state = vggish.state_dict()
    assert list(state) == PORT_KEYS
    assert state["features.0.weight"].shape == (64, 1, 3, 3) and state["features.13.weight"].shape == (512, 512, 3, 3)
    assert state["embeddings.0.weight"].shape == (4096, 512 * 6 * 4) and state["embeddings.4.bias"].shape == (128,)
    assert set(VGGishPCA().state_dict()) == {"pca_eigen_vectors", "pca_means"}
    with torch.no_grad():
        assert vggish(torch.randn(3, 1, 96, 64)).shape == (3, 128)
    with pytest.raises(ValueError, match=r"\[N, 1, 96, 64\]"):
        vggish(torch.randn(3, 96, 64))
    embedder = VGGishEmbedder(vggish)
    clips = torch.rand(2, 2, 16000) * 2 - 1
    features = embedder(clips)
    assert features.shape == (2, 128) and torch.isfinite(features).all() and (features >= 0).all()
    assert torch.allclose(features, embedder(clips.mean(1, keepdim=True)))  # stereo is averaged to mono
    assert features.std(0).mean() > 0  # the random net still tells clips apart
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        embedder(clips * 3)
    with pytest.raises(ValueError, match="postprocess=True needs pca"):
        VGGishEmbedder(vggish, postprocess=True)


def test_checkpoint_round_trip_gives_identical_embeddings(vggish, checkpoint, tmp_path):
    clips = make_tones(3, 2.0, 16000, seed=0)[0]
    loaded = VGGishEmbedder.from_checkpoint(checkpoint)
    assert torch.equal(loaded(clips), VGGishEmbedder(vggish)(clips))
    assert loaded.fingerprint() == VGGishEmbedder(vggish).fingerprint()
    # The PCA file as torchvggish reshapes it (means a column vector); postprocess quantises.
    g = torch.Generator().manual_seed(0)
    pca = {"pca_eigen_vectors": torch.randn(128, 128, generator=g), "pca_means": torch.randn(128, 1, generator=g)}
    torch.save(pca, tmp_path / "pca.pth")
    post = VGGishEmbedder.from_checkpoint(checkpoint, pca_path=tmp_path / "pca.pth", postprocess=True)
    one_example = clips[..., :16000]
    quantised = post(one_example)
    raw = loaded(one_example)
    expected = (((raw - pca["pca_means"].T) @ pca["pca_eigen_vectors"].T).clamp(-2, 2) + 2) * 255 / 4
    assert torch.equal(quantised, quantised.round())  # in [0, 255] by its clamp; compared with expected below
    assert (quantised - expected).abs().max() <= 0.5 + 1e-3
    assert post.fingerprint() != loaded.fingerprint()


def test_bad_checkpoints_fail_naming_the_key(checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth: no such file"):
        VGGishEmbedder.from_checkpoint(tmp_path / "nowhere.pth")
    wrong_key = {
        "features.0.weight": torch.zeros(64, 1, 3, 3),
        "features.0.bias": torch.zeros(64),
        "fc.weight": torch.zeros(1),
    }
    torch.save(wrong_key, tmp_path / "key.pth")
    with pytest.raises(ValueError, match=r"unexpected keys \['fc.weight'\]") as error:
        VGGishEmbedder.from_checkpoint(tmp_path / "key.pth")
    assert "missing keys ['features.3.weight'" in str(error.value)
    torch.save({"features.0.weight": torch.zeros(32, 1, 3, 3)}, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"'features.0.weight' is \(32, 1, 3, 3\), expected \(64, 1, 3, 3\)"):
        VGGishEmbedder.from_checkpoint(tmp_path / "shape.pth")
    torch.save({"features.0.weight": [1, 2]}, tmp_path / "list.pth")
    with pytest.raises(ValueError, match="'features.0.weight' holds a list"):
        VGGishEmbedder.from_checkpoint(tmp_path / "list.pth")
    # torchvggish's PCA file holds numpy arrays: weights_only refuses them, and the error says what to do.
    torch.save({"pca_eigen_vectors": np.eye(128), "pca_means": np.zeros(128)}, tmp_path / "numpy.pth")
    with pytest.raises(ValueError, match="saved once as tensors"):
        VGGishEmbedder.from_checkpoint(checkpoint, pca_path=tmp_path / "numpy.pth")


def test_audio_evaluation_hands_8khz_clips_to_vggish_to_resample(vggish):
    from mgm.eval.suite import AudioEvaluation

    embedder = VGGishEmbedder(vggish)
    evaluation = AudioEvaluation(seconds=1.0, vggish=embedder)
    assert evaluation.sample_rate == 8000 and set(evaluation.extractors) == {"judge", "vggish"}
    clips = evaluation.real_samples(3, seed=0)[0]  # [3, 1, 8000]: 1 s at 8 kHz
    extract = evaluation.extractors["vggish"][0]
    upsampled = torchaudio.functional.resample(clips, 8000, 16000)
    assert torch.allclose(extract(clips), embedder(upsampled), atol=1e-5)
    assert not torch.allclose(extract(clips), embedder(clips), atol=1e-3)  # read as 16 kHz, it is another clip


def test_frechet_distance_of_tones_to_themselves_is_zero_and_to_white_noise_large(vggish):
    embedder = VGGishEmbedder(vggish)
    tones = FeatureStatistics().update(embedder(make_tones(16, 1.0, 16000, seed=0)[0]))
    other_tones = FeatureStatistics().update(embedder(make_tones(16, 1.0, 16000, seed=1)[0]))
    g = torch.Generator().manual_seed(0)
    noise = FeatureStatistics().update(embedder((torch.rand(16, 1, 16000, generator=g) * 2 - 1) * 0.5))
    to_noise = tones.distance(noise)
    assert abs(tones.distance(tones)) < 1e-5 * to_noise
    assert tones.distance(other_tones) < to_noise / 3


def test_mgm_eval_audio_with_vggish(checkpoint, tmp_path, cli_error):
    from mgm.cli import evaluate
    from mgm.data.audio_io import write_wavs

    clips, _ = make_tones(4, 1.0, 8000, seed=5)
    write_wavs({f"{i}.wav": clip for i, clip in enumerate(clips)}, 8000, tmp_path / "samples")
    common = ["audio", "--samples", str(tmp_path / "samples"), "--reference-num", "4", "--device", "cpu",
              "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r.json")]  # fmt: skip
    report = evaluate.main([*common, "--vggish", str(checkpoint)])
    assert set(report["scores"]) == {"frechet_judge", "frechet_vggish"} and report["scores"]["frechet_vggish"] > 0
    cli_error(evaluate.main, [*common, "--overwrite", "--vggish", "nowhere.pth"], "--vggish nowhere.pth: no such file")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    bad = [*common, "--overwrite", "--vggish", str(tmp_path / "bad.pth")]
    cli_error(evaluate.main, bad, "error: --vggish .*bad.pth: not a state dict of VGGish weights")
