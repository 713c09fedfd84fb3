"""Audio DataModules: the embedded Tones8 set, a user's folder of audio files, and their pre-tokenized codes.

Batches are ``{"audio": FloatTensor[B, C, T] in [-1, 1], "labels"?: LongTensor[B], "captions"?: list[str]}``
with T = round(seconds * sample_rate).
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset

from mgm.data.audio_io import AUDIO_EXTENSIONS, audio_frames, read_audio
from mgm.data.pretokenize import pretokenize
from mgm.data.tones import CLASSES, TonesDataset
from mgm.parallel import Ranks
from mgm.training.datamodules import CodesDataModule, SplitDataModule


class AudioDataModule(SplitDataModule):
    """Train/val split of ``dataset()``; subclasses say where the audio comes from.

    Every clip is ``seconds`` long, at ``sample_rate`` Hz, with ``channels`` channels.
    """

    sample_rate: int
    channels: int
    seconds: float

    def describe(self) -> str:
        """A string naming the data exactly (part of the pre-tokenization fingerprint)."""
        raise NotImplementedError


class TonesDataModule(AudioDataModule):
    """The embedded Tones8 clips (generated in memory from ``seed``; nothing to download). Mono."""

    channels = 1
    classes = CLASSES

    def __init__(
        self,
        num_clips: int = 10_000,
        seconds: float = 2.0,
        sample_rate: int = 8000,
        seed: int = 0,
        batch_size: int = 32,
        val_fraction: float = 0.05,
        num_workers: int = 0,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        self.num_clips, self.seconds, self.sample_rate = num_clips, seconds, sample_rate

    def dataset(self) -> Dataset:
        return TonesDataset(self.num_clips, self.seconds, self.sample_rate, self.seed)

    def describe(self) -> str:
        return (
            f"tones8(num_clips={self.num_clips}, seconds={self.seconds}, sample_rate={self.sample_rate}, "
            f"seed={self.seed})"
        )


class AudioFolderDataset(Dataset):
    """Crops of ``seconds`` from audio files, read (and resampled) on demand.

    Items: ``{"audio": FloatTensor[channels, T]}`` plus ``"labels"`` (LongTensor[]) when ``labels``
    is given and ``"captions"`` (str) when ``captions`` is given. A crop starts at the beginning of
    the file, or, with ``random_crop``, anywhere that fits (drawn from the item's generator in
    training: ``mgm.training.resume.SeededItems``). Files shorter than
    ``seconds`` are zero-padded at the end.
    """

    def __init__(
        self,
        files: list[Path],
        sample_rate: int,
        seconds: float,
        channels: int,
        labels: list[int] | None = None,
        captions: list[str] | None = None,
        random_crop: bool = False,
    ):
        self.files, self.labels, self.captions = files, labels, captions
        self.sample_rate, self.seconds, self.channels, self.random_crop = sample_rate, seconds, channels, random_crop
        self.num_samples = round(seconds * sample_rate)

    def cropping(self, random: bool) -> AudioFolderDataset:
        """The same files with random (``True``) or start-of-file crops."""
        other = copy.copy(self)
        other.random_crop = random
        return other

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        return self.draw(index, None)

    def draw(self, index: int, generator: torch.Generator | None) -> dict:
        """Clip ``index``, a random crop's offset drawn from ``generator`` (None: torch's global one)."""
        path = self.files[index]
        offset = 0.0
        if self.random_crop:
            frames, file_rate = audio_frames(path)
            offset = torch.rand((), generator=generator).item() * max(0.0, frames / file_rate - self.seconds)
        # A little more than needed: the resampled part is trimmed to exactly num_samples below.
        wav, _ = read_audio(path, self.sample_rate, self.channels, offset, self.seconds + 1 / self.sample_rate)
        wav = F.pad(wav[:, : self.num_samples], (0, max(0, self.num_samples - wav.shape[1])))
        item = {"audio": wav}
        if self.labels is not None:
            item["labels"] = torch.tensor(self.labels[index])
        if self.captions is not None:
            item["captions"] = self.captions[index]
        return item


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


class AudioFolderDataModule(AudioDataModule):
    """A user's audio files (``.wav``, ``.flac``), found recursively under ``root``.

    ``root/<class>/.../<clip>.wav``: class sub-folders (sorted) become labels 0..C-1.
    ``root/<clip>.wav``: no labels. A ``<clip>.txt`` beside a clip is its caption; when any clip
    has one, batches carry ``"captions"`` (``""`` for clips without). Each item is a ``seconds``
    crop, resampled to ``sample_rate`` and mixed to ``channels``: a random crop in the training
    set, the start of the file in the validation set and in ``dataset()`` (what pre-tokenization
    encodes). Hidden files and folders (names starting with ".") are skipped.
    """

    def __init__(
        self,
        root: str,
        sample_rate: int = 24_000,
        seconds: float = 2.0,
        channels: int = 1,
        batch_size: int = 32,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(f"sample_rate={sample_rate!r}: expected a positive whole number of samples per second")
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds * sample_rate >= 1):
            raise ValueError(f"seconds={seconds!r}: expected a clip length of at least one sample")
        if channels not in (1, 2):
            raise ValueError(f"channels={channels!r}: expected 1 (mono) or 2 (stereo)")
        self.root, self.sample_rate, self.seconds, self.channels = root, sample_rate, seconds, channels
        self.classes: list[str] | None = None

    def dataset(self) -> AudioFolderDataset:
        """Every clip, cropped deterministically (start of file)."""
        root = Path(self.root)
        if not root.is_dir():
            raise FileNotFoundError(f"root={self.root!r}: no such folder")
        files = sorted(
            p
            for p in root.rglob("*")
            if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file() and not _is_hidden(p, root)
        )
        if not files:
            raise FileNotFoundError(
                f"root={self.root!r}: no audio files found (expected {' or '.join(AUDIO_EXTENSIONS)} files, "
                "in class sub-folders or directly in the folder)"
            )
        in_root = sum(p.parent == root for p in files)
        if 0 < in_root < len(files):
            raise ValueError(
                f"root={self.root!r}: {in_root} audio files sit directly in the folder and {len(files) - in_root} "
                "in sub-folders; put every file in a class sub-folder (labelled) or all directly in it (unlabelled)"
            )
        labels = None
        if in_root == 0:
            self.classes = sorted({p.relative_to(root).parts[0] for p in files})
            index = {name: i for i, name in enumerate(self.classes)}
            labels = [index[p.relative_to(root).parts[0]] for p in files]
        caption_files = [p.with_suffix(".txt") for p in files]
        captions = None
        if any(c.is_file() for c in caption_files):
            captions = [c.read_text().strip() if c.is_file() else "" for c in caption_files]
        return AudioFolderDataset(files, self.sample_rate, self.seconds, self.channels, labels, captions)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        super().setup(stage)
        # The training subset reads random crops; validation keeps the deterministic ones.
        self.train_set = Subset(self.train_set.dataset.cropping(random=True), self.train_set.indices)

    def describe(self) -> str:
        return (
            f"audiofolder(root={self.root}, sample_rate={self.sample_rate}, seconds={self.seconds}, "
            f"channels={self.channels}, crop=start)"
        )


class PretokenizedAudioDataModule(CodesDataModule):
    """Codes of an audio DataModule's clips under a saved EncodecTokenizer, encoded once into ``cache``.

    The clips are encoded as ``audio.dataset()`` gives them (deterministic crops) at the data's
    ``sample_rate`` and ``channels``, which must be the tokenizer's. Labels are kept with the codes;
    captions (an audio folder's ``.txt`` files) are read from the dataset again each run, as they
    cost nothing to read, and batches carry them for ``MaskedTokenTraining(text_encoder=...)``.
    """

    def __init__(
        self,
        audio: AudioDataModule,
        tokenizer: str,
        cache: str,
        batch_size: int = 64,
        val_fraction: float = 0.05,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, num_workers, seed)
        self.audio, self.tokenizer_dir, self.cache = audio, tokenizer, cache

    def prepare_data(self) -> None:
        """Encode into ``cache`` once. In one process, here; under several ranks (DDP), ``setup``
        encodes on all of them, each its share, merged into the one cache (``mgm.data.pretokenize``)."""
        if Ranks.current().world_size == 1:
            self.load()

    def load(self):
        from mgm.tokenizers.audio_encodec import EncodecTokenizer

        tokenizer = EncodecTokenizer.from_pretrained(self.tokenizer_dir)
        data = (self.audio.sample_rate, self.audio.channels)
        if data != (tokenizer.sample_rate, tokenizer.channels):
            raise ValueError(
                f"audio: {self.audio.describe()} is {data[0]} Hz with {data[1]} channel(s), but the tokenizer in "
                f"{os.fspath(self.tokenizer_dir)} takes {tokenizer.sample_rate} Hz with {tokenizer.channels}; "
                "make the data's sample_rate and channels match the tokenizer's"
            )
        # The saved codec's spec names one clip length (its ``seconds``); the codes have the data's.
        tokenizer.spec = tokenizer.spec_for_seconds(self.audio.seconds)
        clips = self.audio.dataset()
        self.captions = getattr(clips, "captions", None)
        return pretokenize(tokenizer, clips, self.cache, source=self.audio.describe(), input_key="audio")
