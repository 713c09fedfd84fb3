import urllib.error

import pytest
import torch
import torchaudio
from encodec import EncodecModel

from mgm.tokenizers import EncodecTokenizer
from tests.tokenizers.contract import check_tokenizer_contract


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return EncodecTokenizer.small(seconds=0.2).eval()


@pytest.fixture(scope="module")
def codec_24khz():
    # EnCodec's 24 kHz architecture with its random initialisation (pretrained=False): no download.
    torch.manual_seed(0)
    return EncodecTokenizer.pretrained("24khz", bandwidth=6.0, weights=False)


def noise(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 1.8 - 0.9


def test_small_codec_round_trip(small):
    assert (small.sample_rate, small.channels, small.downsample, small.frame_rate) == (8000, 1, 160, 50)
    assert small.num_codebooks == 4 and small.spec.codebook_sizes == (256,) * 4 and small.spec.shape == (10,)
    codes = check_tokenizer_contract(small, noise(3, 1, 1600), extent=(1600,))
    assert codes.shape == (3, 4, 10)
    # A random encoder's latents share a large common part, so codes vary little, but they vary.
    assert sum(len(codes[:, k].unique()) for k in range(4)) > 4, "random codebooks give varied codes"


def test_any_length_pads_the_last_frame(small):
    codes = small.encode(noise(1, 1, 161))
    assert codes.shape == (1, 4, 2) and small.tokens_for_samples(161) == 2
    assert small.decode(codes).shape == (1, 1, 320)
    assert small.spec_for_seconds(1.0).shape == (50,) and small.spec_for_tokens(7).shape == (7,)


def test_24khz_architecture_at_6kbps(codec_24khz):
    tok = codec_24khz
    assert (tok.sample_rate, tok.frame_rate, tok.downsample, tok.num_codebooks) == (24_000, 75, 320, 8)
    wav = noise(1, 1, 4800)  # 0.2 s -> 15 frames at 75 Hz
    assert tok.encode(wav).unique().tolist() == [0], "EnCodec's fresh codebooks are all zero"
    tok.init_codebooks_(generator=torch.Generator().manual_seed(0))
    codes = tok.encode(wav)
    assert codes.shape == (1, 8, 15) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 1024
    assert sum(len(codes[0, k].unique()) for k in range(8)) > 8, "codes vary after init_codebooks_"
    assert tok.decode(codes).shape == (1, 1, 4800)


def test_every_bandwidth_gives_its_codebooks_and_they_nest(small):
    # 0.4 kbps per codebook; 1.2 / 0.4 rounds down to 2 in floating point, still 3 codebooks here.
    codes = small.encode(noise(2, 1, 800))
    for k, bandwidth in enumerate((0.4, 0.8, 1.2, 1.6), start=1):
        tok = EncodecTokenizer.small(bandwidth=bandwidth)
        tok.load_state_dict(small.state_dict())
        assert tok.num_codebooks == k and tok.spec.num_codebooks == k
        fewer = tok.eval().encode(noise(2, 1, 800))
        assert torch.equal(fewer, codes[:, :k]), "residual codes do not depend on later codebooks"
        assert small.decode(fewer).shape == (2, 1, 800), "fewer codebooks decode at a lower bandwidth"
    with pytest.raises(ValueError, match=r"bandwidth=1.0: this codec supports \[0.4, 0.8, 1.2, 1.6\]"):
        EncodecTokenizer.small(bandwidth=1.0)


def test_stereo_48khz_architecture_mono_is_duplicated():
    torch.manual_seed(0)
    tok = EncodecTokenizer.pretrained("48khz", bandwidth=3.0, weights=False).init_codebooks_()
    assert (tok.channels, tok.frame_rate, tok.num_codebooks) == (2, 150, 2)
    mono = noise(1, 1, 4800) * 0.3
    codes = tok.encode(torch.cat([mono, mono * 0.5]))
    assert codes.shape == (2, 2, 15)
    assert torch.equal(codes[0], codes[1]), "the normalising codec drops the input level"
    assert torch.equal(codes[:1], tok.encode(mono.expand(-1, 2, -1)))
    audio = tok.decode(codes)
    assert audio.shape == (2, 2, 4800)
    torch.testing.assert_close(audio.pow(2).mean((1, 2)).sqrt(), torch.full((2,), 0.1), atol=0.02, rtol=0)


def test_stereo_into_mono_codec_is_averaged(small):
    stereo = noise(2, 2, 800)
    assert torch.equal(small.encode(stereo), small.encode(stereo.mean(1, keepdim=True)))


def test_other_sample_rates_are_resampled(small):
    wav = 0.5 * torch.sin(torch.arange(16_000) * 0.1).view(1, 1, -1)  # 1 s at 16 kHz -> 8000 samples -> 50 frames
    codes = small.encode(wav, sample_rate=16_000)
    assert codes.shape == (1, 4, 50)
    assert torch.equal(codes, small.encode(torchaudio.functional.resample(wav, 16_000, 8000)))
    strict = EncodecTokenizer.small(resample=False)
    with pytest.raises(ValueError, match="sample_rate=16000: this codec takes 8000 Hz audio .* resample=False"):
        strict.encode(wav, sample_rate=16_000)
    assert strict.encode(noise(1, 1, 800), sample_rate=8000).shape == (1, 4, 5)


@pytest.mark.parametrize(
    "wav, match",
    [
        (torch.zeros(1, 800), r"expected a float tensor \[B, C, T\].*got shape \(1, 800\)"),
        (torch.zeros(1, 3, 800), r"shape \(1, 3, 800\); expected \[B, C, T\] .* C = 1 \(mono\) or 2"),
        (torch.zeros(1, 1, 0), r"shape \(1, 1, 0\)"),
        (torch.zeros(1, 1, 800, dtype=torch.long), "float tensor"),
        (torch.full((1, 1, 800), 1.5), r"values span \[1.500, 1.500\]; mgm audio is in \[-1, 1\]"),
        (torch.full((1, 1, 800), float("nan")), "NaN"),
    ],
)
def test_bad_audio(small, wav, match):
    with pytest.raises(ValueError, match=match):
        small.encode(wav)


def test_bad_codes(small):
    with pytest.raises(ValueError, match=r"codebook 1 expects values in \[0, 255\]"):
        small.decode(torch.tensor([[[0], [256]]]))
    with pytest.raises(ValueError, match=r"expected \[B, K, N\] with K = 4 \(or 1 to 4 codebooks\)"):
        small.decode(torch.zeros(1, 5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="rank 3"):
        small.decode(torch.zeros(4, 3, dtype=torch.long))


def test_sample_mask_to_token_mask(small):
    mask = torch.zeros(1, 1000, dtype=torch.bool)
    mask[0, 159] = True  # last sample of frame 0
    mask[0, 999] = True  # in the short last frame (6)
    tokens = small.token_mask(mask)
    assert tokens.shape == (1, 4, 7)
    assert tokens[0, 0].nonzero()[:, 0].tolist() == [0, 6] and torch.equal(tokens[0, 0], tokens[0, 3])


def test_save_and_load_round_trip(small, tmp_path):
    small.save_pretrained(tmp_path / "codec")
    assert {p.name for p in (tmp_path / "codec").iterdir()} == {"config.json", "model.safetensors", "manifest.json"}
    loaded = EncodecTokenizer.from_pretrained(tmp_path / "codec")
    for name, value in small.state_dict().items():  # weight_norm's g and v, the codebooks' EMA state
        assert torch.equal(value, loaded.state_dict()[name]), name
    assert any(k.endswith("weight_g") for k in small.state_dict())
    assert any(k.endswith("_codebook.embed_avg") for k in small.state_dict())
    assert loaded.seconds == 0.2 and loaded.spec == small.spec
    wav = noise(2, 1, 1600)
    codes = small.encode(wav)
    assert torch.equal(loaded.encode(wav), codes)
    assert torch.equal(loaded.decode(codes), small.decode(codes))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        small.save_pretrained(tmp_path / "codec")
    small.save_pretrained(tmp_path / "codec", overwrite=True)


def test_missing_or_corrupt_folders_are_named(small, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        EncodecTokenizer.from_pretrained(tmp_path / "missing")
    small.save_pretrained(tmp_path / "codec")
    (tmp_path / "codec" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not the file this folder was saved with"):
        EncodecTokenizer.from_pretrained(tmp_path / "codec")
    (tmp_path / "codec" / "manifest.json").unlink()  # without a manifest: the loader's own checks
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        EncodecTokenizer.from_pretrained(tmp_path / "codec")
    (tmp_path / "codec" / "config.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        EncodecTokenizer.from_pretrained(tmp_path / "codec")
    # Weights of another architecture do not load silently.
    EncodecTokenizer.small(num_codebooks=2).save_pretrained(tmp_path / "other")
    small.save_pretrained(tmp_path / "mixed")
    (tmp_path / "other" / "model.safetensors").replace(tmp_path / "mixed" / "model.safetensors")
    with pytest.raises(ValueError, match="not the file this folder was saved with"):
        EncodecTokenizer.from_pretrained(tmp_path / "mixed")
    (tmp_path / "mixed" / "manifest.json").unlink()
    with pytest.raises(ValueError, match="weights do not match the config"):
        EncodecTokenizer.from_pretrained(tmp_path / "mixed")


def test_pretrained_offline_error_names_repository(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match=r"could not fetch the pretrained EnCodec 24khz weights.*repository="):
        EncodecTokenizer.pretrained("24khz")
    with pytest.raises(FileNotFoundError, match="no encodec_48khz-7e698e3e.th there"):
        EncodecTokenizer.pretrained("48khz", repository=tmp_path)
    with pytest.raises(ValueError, match="name='16khz'"):
        EncodecTokenizer.pretrained("16khz")


def test_pretrained_loads_encodecs_weights(monkeypatch):
    # Stand in for the download with a random 48 kHz EnCodec's state: the tokenizer must hold it exactly.
    torch.manual_seed(1)
    reference = EncodecModel.encodec_model_48khz(pretrained=False)
    monkeypatch.setattr(EncodecModel, "_get_pretrained", staticmethod(lambda name, repository: reference.state_dict()))
    tok = EncodecTokenizer.pretrained("48khz", bandwidth=6.0)
    assert tok.num_codebooks == 4 and tok.config["target_bandwidths"] == [3.0, 6.0, 12.0, 24.0]
    for name, value in reference.state_dict().items():
        assert torch.equal(tok.model.state_dict()[name], value), name
