import lightning as L
import pytest
import torch

from mgm.data.audio_io import write_wavs
from mgm.data.tones import CLASSES, classify_tones, make_tones
from mgm.training.audio_data import (
    AudioFolderDataModule,
    PretokenizedAudioDataModule,
    TonesDataModule,
)
from tests.conftest import quiet_trainer


def ramp(seconds: float, sample_rate: int, channels: int = 1) -> torch.Tensor:
    """A rising ramp in [-0.9, 0.9]: its value tells where in the file a sample came from."""
    wav = torch.linspace(-0.9, 0.9, round(seconds * sample_rate))
    return wav.expand(channels, -1).clone()


@pytest.fixture
def labelled_folder(tmp_path):
    """root/high/*.wav (A4 tones) and root/low/*.wav (C4 tones), 16 kHz mono, one with a caption."""
    root = tmp_path / "clips"
    for name, label in (("high", CLASSES.index("A4")), ("low", CLASSES.index("C4"))):
        wav, _ = make_tones(3, 1.0, 16000, seed=label, labels=torch.full((3,), label))
        write_wavs({f"{name}/{i}.wav": wav[i] for i in range(3)}, 16000, root)
    (root / "low" / "1.txt").write_text("a low note\n")
    return root


class ShapeProbe(L.LightningModule):
    """A stand-in system that records the batches of its training steps."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.batches = []

    def training_step(self, batch, batch_idx):
        self.batches.append(batch)
        return self.weight * batch["audio"].mean()

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_tones_datamodule_batches():
    data = TonesDataModule(num_clips=40, seconds=1.0, sample_rate=8000, batch_size=8, val_fraction=0.1)
    data.setup()
    assert len(data.train_set) == 36 and len(data.val_set) == 4
    batch = next(iter(data.train_dataloader()))
    assert batch["audio"].shape == (8, 1, 8000) and batch["labels"].shape == (8,)
    assert torch.equal(classify_tones(batch["audio"], 8000), batch["labels"])
    assert (data.sample_rate, data.channels, data.classes) == (8000, 1, CLASSES)
    assert data.describe() == "tones8(num_clips=40, seconds=1.0, sample_rate=8000, seed=0)"


def test_folder_labels_captions_and_resampling(labelled_folder):
    data = AudioFolderDataModule(str(labelled_folder), sample_rate=8000, seconds=0.5, batch_size=2, val_fraction=0.2)
    items = data.dataset()
    assert data.classes == ["high", "low"] and len(items) == 6
    item = items[4]  # low/1.wav
    assert item["audio"].shape == (1, 4000) and item["labels"] == 1 and item["captions"] == "a low note"
    assert items[0]["captions"] == "" and items[0]["labels"] == 0
    # Resampled from 16 kHz, the pitch is kept: the checker still reads A4 and C4.
    audio = torch.stack([items[i]["audio"] for i in range(6)])
    assert classify_tones(audio, 8000).tolist() == [CLASSES.index("A4")] * 3 + [CLASSES.index("C4")] * 3

    data.setup()
    batch = next(iter(data.train_dataloader()))
    assert batch["audio"].shape == (2, 1, 4000) and batch["labels"].dtype == torch.long
    assert isinstance(batch["captions"], list) and all(isinstance(c, str) for c in batch["captions"])
    expected = f"audiofolder(root={labelled_folder}, sample_rate=8000, seconds=0.5, channels=1, crop=start)"
    assert data.describe() == expected


def test_files_directly_in_root_have_no_labels_and_short_files_are_padded(tmp_path):
    write_wavs({"a.wav": ramp(1.0, 8000), "b.wav": ramp(0.25, 8000, channels=2)}, 8000, tmp_path)
    data = AudioFolderDataModule(str(tmp_path), sample_rate=8000, seconds=0.5, channels=2, val_fraction=0.0)
    items = data.dataset()
    assert data.classes is None and set(items[0]) == {"audio"}
    short = items[1]["audio"]
    assert short.shape == (2, 4000) and (short[:, 2000:] == 0).all() and (short[:, :2000] != 0).any()
    assert items[0]["audio"].shape == (2, 4000) and torch.equal(items[0]["audio"][0], items[0]["audio"][1])


def test_training_crops_are_random_and_other_crops_start_at_the_beginning(tmp_path):
    write_wavs({f"{i}.wav": ramp(2.0, 8000) for i in range(4)}, 8000, tmp_path)
    data = AudioFolderDataModule(str(tmp_path), sample_rate=8000, seconds=0.25, batch_size=2, val_fraction=0.25)
    data.setup()
    first_sample = lambda dataset, i: dataset[i]["audio"][0, 0].item()  # noqa: E731
    start = ramp(2.0, 8000)[0, 0].item()
    assert first_sample(data.val_set, 0) == pytest.approx(start, abs=1e-4)
    assert first_sample(data.dataset(), 2) == pytest.approx(start, abs=1e-4)
    assert first_sample(data.val_set, 0) == first_sample(data.val_set, 0)
    torch.manual_seed(0)
    starts = {round(first_sample(data.train_set, 0), 3) for _ in range(8)}
    assert len(starts) == 8 and min(starts) > start, "each read is a new crop, not the file's start"
    # A random crop is still a contiguous piece of the file: a ramp with the file's slope.
    crop = data.train_set[1]["audio"][0]
    assert torch.allclose(crop.diff(), torch.full((1999,), 1.8 / 15999), atol=1e-4)


def test_train_steps_get_audio_batches(labelled_folder):
    data = AudioFolderDataModule(str(labelled_folder), sample_rate=8000, seconds=0.5, batch_size=2, val_fraction=0.2)
    probe = ShapeProbe()
    quiet_trainer(2, limit_val_batches=0).fit(probe, data)
    assert len(probe.batches) == 2
    for batch in probe.batches:
        assert batch["audio"].shape == (2, 1, 4000) and batch["labels"].shape == (2,) and len(batch["captions"]) == 2


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        AudioFolderDataModule(str(tmp_path / "missing")).dataset()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    data = AudioFolderDataModule(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"no audio files found \(expected \.wav or \.flac"):
        data.setup()
    write_wavs({"a.wav": ramp(0.1, 8000), "cls/b.wav": ramp(0.1, 8000)}, 8000, tmp_path / "mixed")
    with pytest.raises(ValueError, match="1 audio files sit directly in the folder and 1 in sub-folders"):
        AudioFolderDataModule(str(tmp_path / "mixed")).dataset()
    with pytest.raises(ValueError, match="channels=3"):
        AudioFolderDataModule(str(tmp_path), channels=3)
    with pytest.raises(ValueError, match="sample_rate=0"):
        AudioFolderDataModule(str(tmp_path), sample_rate=0)


def test_hidden_files_are_skipped(tmp_path):
    write_wavs({"a.wav": ramp(0.1, 8000)}, 8000, tmp_path)
    (tmp_path / "._a.wav").write_bytes(b"macOS resource fork, not audio")
    assert len(AudioFolderDataModule(str(tmp_path), sample_rate=8000).dataset()) == 1


@pytest.fixture
def tiny_codec(tmp_path):
    from mgm.tokenizers.audio_encodec import EncodecTokenizer

    torch.manual_seed(0)
    codec = EncodecTokenizer.small(n_filters=4, dimension=8, bins=16, num_codebooks=2, seconds=0.5)
    codec.save_pretrained(tmp_path / "codec")
    return str(tmp_path / "codec")


def test_pretokenized_tones_train_a_masked_transformer(tiny_codec, tmp_path):
    from mgm.models import MaskedTransformer
    from mgm.training import MaskedTokenTraining

    tones = TonesDataModule(num_clips=24, seconds=1.0, sample_rate=8000)
    cache = tmp_path / "codes.safetensors"
    data = PretokenizedAudioDataModule(tones, tiny_codec, str(cache), batch_size=4, val_fraction=0.25)
    data.setup()
    # 1 s at 8 kHz, 160 samples per frame: 50 frames (the codec was saved for 0.5 s clips).
    assert data.spec.codebook_sizes == (16, 16) and data.spec.shape == (50,) and cache.is_file()
    batch = next(iter(data.train_dataloader()))
    assert batch["codes"].shape == (4, 2, 50) and batch["labels"].shape == (4,)

    model = MaskedTransformer([16, 16], [50], dim=16, depth=1, num_heads=2, num_classes=len(CLASSES))
    quiet_trainer(1, limit_val_batches=0).fit(MaskedTokenTraining(model, warmup_steps=1), data)


def test_pretokenizing_refuses_data_the_codec_does_not_take(tiny_codec, tmp_path, monkeypatch):
    from mgm.tokenizers.audio_encodec import EncodecTokenizer

    monkeypatch.setattr(EncodecTokenizer, "encode", lambda *a: pytest.fail("encoded before checking the rate"))
    tones = TonesDataModule(num_clips=8, seconds=1.0, sample_rate=16000)
    data = PretokenizedAudioDataModule(tones, tiny_codec, str(tmp_path / "codes.safetensors"))
    with pytest.raises(ValueError, match="16000 Hz with 1 channel.*takes 8000 Hz with 1"):
        data.setup()
    assert not (tmp_path / "codes.safetensors").exists()


def test_captioned_audio_folder_trains_and_generates_through_a_text_encoder(labelled_folder, tiny_codec, tmp_path):
    from mgm.models import MaskedTransformer
    from mgm.models.text import WordTextEncoder
    from mgm.pipelines import AudioPipeline
    from mgm.tokenizers.audio_encodec import EncodecTokenizer
    from mgm.training import MaskedTokenTraining

    folder = AudioFolderDataModule(str(labelled_folder), sample_rate=8000, seconds=0.5)
    data = PretokenizedAudioDataModule(folder, tiny_codec, str(tmp_path / "codes.safetensors"), batch_size=3)
    data.setup()
    batch = next(iter(data.train_dataloader()))
    assert batch["codes"].shape == (3, 2, 25) and len(batch["captions"]) == 3
    captions = [data.train_set[i]["captions"] for i in range(len(data.train_set))]
    assert "a low note" in captions + [data.val_set[0]["captions"]]

    torch.manual_seed(0)
    text = WordTextEncoder(dim=16, depth=1, num_heads=2, num_buckets=64)
    model = MaskedTransformer([16, 16], [25], dim=16, depth=1, num_heads=2, num_classes=2, context_dim=16)
    system = MaskedTokenTraining(model, warmup_steps=1, plan="soundstorm", text_encoder=text)
    quiet_trainer(2, limit_val_batches=0).fit(system, data)

    codec = EncodecTokenizer.from_pretrained(tiny_codec)
    with pytest.raises(ValueError, match="text_encoder: this transformer is text-conditioned"):
        AudioPipeline(codec, model)
    pipe = AudioPipeline(codec, model, class_names=folder.classes, text_encoder=text)
    clips = pipe.generate(2, labels=[1], texts="a low note", seconds=0.5, num_steps=2)
    assert clips.shape == (2, 1, 4000)
    # The caption reaches the model: another caption gives other logits for the same codes.
    labels = torch.tensor([1, 1])
    low, high = (pipe.condition(caption, 2, labels) for caption in ("a low note", "a high note"))
    codes = torch.randint(0, 16, (2, 2, 25))
    with torch.no_grad():
        assert not torch.allclose(model(codes, low), model(codes, high))
    same = pipe.generate_codes(2, labels=[1], texts="a low note", seconds=0.5, num_steps=2).codes
    with pytest.raises(ValueError, match="texts: 3 captions for 2 samples"):
        pipe.generate(2, texts=["a", "b", "c"], seconds=0.5)

    pipe.save_pretrained(tmp_path / "pipe")
    loaded = AudioPipeline.from_pretrained(tmp_path / "pipe")
    assert isinstance(loaded.text_encoder, WordTextEncoder)
    assert torch.equal(loaded.generate_codes(2, labels=[1], texts="a low note", seconds=0.5, num_steps=2).codes, same)
    # Editing takes captions too.
    infilled = loaded.infill_codes(clips, 0.1, 0.3, labels=[1], texts="a low note", num_steps=2)
    assert infilled.codes.shape == (2, 2, 25)

    plain = AudioPipeline(codec, MaskedTransformer([16, 16], [25], dim=16, depth=1, num_heads=2))
    with pytest.raises(ValueError, match="texts given, but this pipeline's model is not text-conditioned"):
        plain.generate(1, texts="a low note", seconds=0.5)
