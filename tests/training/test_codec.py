import math

import pytest
import soundfile
import torch
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader

from mgm.tokenizers import EncodecTokenizer
from mgm.training.codec import CodecTraining, MultiScaleMelLoss, STFTLoss
from tests.conftest import quiet_trainer

RATE = 8000


@pytest.fixture
def tiny_codec() -> EncodecTokenizer:
    torch.manual_seed(0)
    return EncodecTokenizer.small(n_filters=8, dimension=16, bins=32, num_codebooks=2, seconds=0.2)


def sines(num: int = 8, samples: int = 1600, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / RATE
    freqs = 200 + 600 * torch.rand(num, generator=g)
    amps = 0.2 + 0.6 * torch.rand(num, generator=g)
    return [{"audio": (a * torch.sin(2 * math.pi * f * t))[None]} for f, a in zip(freqs, amps)]


def loader(num: int = 8) -> DataLoader:
    return DataLoader(sines(num), batch_size=4)


def _fit(system, steps=3, **trainer_kwargs):
    trainer = quiet_trainer(steps, limit_val_batches=1, log_every_n_steps=1, **trainer_kwargs)
    trainer.fit(system, loader(), loader(4))
    return trainer


def test_training_moves_encoder_decoder_and_codebooks(tiny_codec):
    before = {k: v.clone() for k, v in tiny_codec.state_dict().items()}
    system = CodecTraining(tiny_codec, lr=1e-3, warmup_steps=1, num_audio_samples=0)
    trainer = _fit(system)
    after = tiny_codec.state_dict()
    for name in (
        "model.encoder.model.0.conv.conv.weight_v",
        "model.decoder.model.11.conv.conv.weight_v",
        "model.quantizer.vq.layers.0._codebook.embed",
        "model.quantizer.vq.layers.1._codebook.embed",
    ):
        assert not torch.equal(before[name], after[name]), name
    metrics = trainer.callback_metrics
    for name in ("train/loss", "train/l1", "train/mel", "train/commitment", "train/perplexity_0", "val/mel"):
        assert math.isfinite(float(metrics[name])), name
    assert float(metrics["train/commitment"]) > 0
    assert 1 <= float(metrics["train/perplexity_1"]) <= 32


def test_mel_loss_is_zero_only_for_identical_audio():
    mel = MultiScaleMelLoss(RATE)
    audio = torch.stack([clip["audio"] for clip in sines(2)])
    assert float(mel(audio, audio)) == 0
    assert float(mel(audio, 0.5 * audio)) > 0
    assert float(mel(audio, torch.zeros_like(audio))) > 0  # silence: the log floor keeps it finite


def test_stft_loss_separates_a_fundamental_the_mel_loss_blurs():
    t = torch.arange(RATE) / RATE
    c4, locked = (torch.sin(2 * math.pi * f * t).view(1, 1, -1) for f in (261.63, 250.0))
    stft = STFTLoss(4096)
    assert float(stft(c4, c4)) == 0.0
    assert float(stft(0.9 * c4, c4)) == pytest.approx(0.1, abs=1e-4)  # relative magnitude error
    # 250 Hz against 261.6 Hz: the peaks sit six 2 Hz bins apart, so the STFT loss scores the
    # frame-locked tone worse than silence (1.33 against 1.0 here); the mel loss scores it at under
    # half of silence (5.6 against 12.4), as the bands around 250 Hz are ~56 Hz wide.
    silence = torch.zeros_like(c4)
    assert float(stft(locked, c4)) > float(stft(silence, c4)) == pytest.approx(1.0)
    mel = MultiScaleMelLoss(RATE)
    assert float(mel(locked, c4)) < 0.5 * float(mel(silence, c4))
    with pytest.raises(ValueError, match="stft_n_fft=8"):
        STFTLoss(8)


def test_data_init_puts_every_code_on_a_batch_latent(tiny_codec):
    system = CodecTraining(tiny_codec)
    audio = torch.stack([clip["audio"] for clip in sines(4)])
    latents = tiny_codec.encode_latents(audio).detach()
    assert system.restart_codes(latents, everything=True) == 2 * 32
    flat = latents.transpose(1, 2).reshape(-1, latents.shape[1])
    first = tiny_codec.model.quantizer.vq.layers[0]._codebook
    gaps = (first.embed[:, None] - flat[None]).abs().amax(-1).amin(1)  # each code's nearest latent
    assert gaps.max() == 0, "level-0 codes are latents of the batch"
    # EMA state agrees with the codes, so EnCodec's next EMA step does not move them away.
    torch.testing.assert_close(first.embed_avg / first.cluster_size[:, None], first.embed)


def test_dead_codes_restart_where_the_codebook_fits_worst(tiny_codec):
    system = CodecTraining(tiny_codec, dead_code_threshold=0.5)
    book = tiny_codec.model.quantizer.vq.layers[0]._codebook
    latents = torch.zeros(1, 16, 40)
    latents[0, :, ::8] = 5.0  # 5 of 40 latents sit far from every code
    book.cluster_size.fill_(10.0)
    book.cluster_size[:3] = 0.0  # three dead codes
    system.restart_codes(latents, num_codebooks=1)
    assert torch.allclose(book.embed[:3], torch.full((3, 16), 5.0)), "restarts landed on the far latents"
    assert (book.cluster_size[:3] == 40 / 32).all()


def test_reconstructions_are_written_into_the_log_dir(tiny_codec, tmp_path):
    system = CodecTraining(tiny_codec, num_audio_samples=2)
    _fit(system, steps=2, default_root_dir=tmp_path)  # validates before training and after the epoch (2 batches)
    folder = tmp_path / "reconstructions"
    names = {p.name for p in folder.iterdir()}
    assert names == {f"{stem}_{i}.wav" for stem in ("original", "step_0000000", "step_0000002") for i in (0, 1)}
    data, rate = soundfile.read(folder / "step_0000002_0.wav")
    assert rate == RATE and data.shape == (1600,)


class _NoDirLogger(Logger):
    name, version = "none", 0

    def log_metrics(self, metrics, step=None):
        pass

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def test_audio_logging_without_a_log_dir(tiny_codec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    system = CodecTraining(tiny_codec, num_audio_samples=2)
    audio = torch.stack([clip["audio"] for clip in sines(2)])
    system._write_audio(audio, audio)  # not attached to a trainer
    _fit(system, steps=1, logger=_NoDirLogger())  # a logger with no save_dir: trainer.log_dir is None
    assert not any(tmp_path.rglob("*.wav"))


def test_adversarial_term_and_quantizer_dropout(tiny_codec):
    system = CodecTraining(
        tiny_codec, adversarial_weight=0.1, discriminator_filters=4, quantizer_dropout=True, num_audio_samples=0
    )
    before = [p.clone() for p in system.discriminator.parameters()]
    trainer = _fit(system, steps=2)
    assert any(not torch.equal(a, b) for a, b in zip(before, system.discriminator.parameters()))
    assert math.isfinite(float(trainer.callback_metrics["train/adversarial"]))
    assert 1 <= float(trainer.callback_metrics["train/num_codebooks"]) <= 2


def test_codebook_init_options(tiny_codec):
    CodecTraining(tiny_codec, codebook_init="kmeans")
    assert all(layer._codebook.inited.item() == 0 for layer in tiny_codec.model.quantizer.vq.layers)
    with pytest.raises(ValueError, match=r"codebook_init='random': expected one of \('data', 'kmeans', 'keep'\)"):
        CodecTraining(tiny_codec, codebook_init="random")


def test_warm_up_without_quantiser_then_codebooks_start_on_learned_latents(tiny_codec):
    system = CodecTraining(tiny_codec, lr=1e-3, warmup_steps=1, num_audio_samples=0, quantize_after=2)
    book = tiny_codec.model.quantizer.vq.layers[0]._codebook
    start = book.embed.clone()
    trainer = _fit(system, steps=2)
    assert torch.equal(book.embed, start), "no codebook update while warming up"
    assert "train/perplexity_0" not in trainer.callback_metrics
    trainer = quiet_trainer(3, limit_val_batches=1, log_every_n_steps=1)
    system = CodecTraining(tiny_codec, lr=1e-3, warmup_steps=1, num_audio_samples=0, quantize_after=2)
    trainer.fit(system, loader(), loader(4))
    assert not torch.equal(book.embed, start), "codebooks start on latents at step quantize_after"
    assert "train/perplexity_0" in trainer.callback_metrics


def test_init_from_a_saved_codec(tiny_codec, tmp_path):
    torch.manual_seed(1)
    saved = EncodecTokenizer.small(n_filters=8, dimension=16, bins=32, num_codebooks=2, seconds=0.2)
    saved.save_pretrained(tmp_path / "codec")
    system = CodecTraining(tiny_codec, codebook_init="keep", init_from=str(tmp_path / "codec"))
    for name, value in saved.state_dict().items():
        assert torch.equal(tiny_codec.state_dict()[name], value), name
    other = EncodecTokenizer.small(n_filters=8, dimension=16, bins=64, num_codebooks=2, seconds=0.2)
    with pytest.raises(ValueError, match="differs"):
        CodecTraining(other, init_from=str(tmp_path / "codec"))
    assert system.tokenizer is tiny_codec


def test_decoder_only_keeps_every_code_and_moves_the_decoder(tiny_codec, tmp_path):
    torch.manual_seed(1)
    saved = EncodecTokenizer.small(n_filters=8, dimension=16, bins=32, num_codebooks=2, seconds=0.2)
    for layer in saved.model.quantizer.vq.layers:  # trained-looking codebooks (a fresh codec's are all zero)
        book = layer._codebook
        book.embed.normal_(0, 0.1)
        book.embed_avg.copy_(book.embed)
        book.cluster_size.fill_(1.0)
        book.inited.fill_(1.0)
    saved.save_pretrained(tmp_path / "codec")
    audio = torch.stack([clip["audio"] for clip in sines(8, seed=3)])
    codes_before = saved.eval().encode(audio)
    before = {k: v.clone() for k, v in saved.state_dict().items()}
    system = CodecTraining(
        tiny_codec, codebook_init="keep", quantize_after=0, init_from=str(tmp_path / "codec"),
        decoder_only=True, stft_weight=1.0, stft_n_fft=256, lr=1e-3, warmup_steps=1, num_audio_samples=0,
    )  # fmt: skip
    trainer = _fit(system)
    after = tiny_codec.state_dict()
    outside = [name for name, value in before.items() if not name.startswith("model.decoder.")]
    assert outside and all(torch.equal(after[name], before[name]) for name in outside)
    decoder_weight = "model.decoder.model.11.conv.conv.weight_v"
    assert not torch.equal(before[decoder_weight], after[decoder_weight])
    assert torch.equal(tiny_codec.eval().encode(audio), codes_before)
    assert math.isfinite(float(trainer.callback_metrics["train/stft"]))


def test_decoder_only_needs_a_trained_codec_to_start_from(tiny_codec, tmp_path):
    with pytest.raises(ValueError, match="init_from"):
        CodecTraining(tiny_codec, decoder_only=True, codebook_init="keep")
    tiny_codec.save_pretrained(tmp_path / "codec")
    with pytest.raises(ValueError, match="codebook_init='data'"):
        CodecTraining(tiny_codec, decoder_only=True, init_from=str(tmp_path / "codec"))
