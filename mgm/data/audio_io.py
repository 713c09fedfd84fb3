"""Reading and writing audio files (through soundfile), atomically and without overwriting.

Audio in memory is FloatTensor[C, T] (channels, samples) in [-1, 1].
"""

from __future__ import annotations

import operator
import os
from pathlib import Path

import torch
import torchaudio

from mgm.checks import check_number
from mgm.io import atomic_write

AUDIO_EXTENSIONS = (".wav", ".flac")  # what AudioFolderDataModule looks for


def _check_sample_rate(sample_rate) -> int:
    try:
        rate = operator.index(sample_rate)
    except TypeError:
        rate = 0
    if isinstance(sample_rate, bool) or rate <= 0:
        raise ValueError(f"sample_rate={sample_rate!r}: expected a positive whole number of samples per second")
    return rate


def _shape(x) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    channels: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[torch.Tensor, int]:
    """An audio file -> (FloatTensor[C, T] in [-1, 1], sample rate).

    ``sample_rate``: resample to it (torchaudio's windowed-sinc resampler) if the file's differs;
    ``None`` keeps the file's. ``channels``: 1 mixes down to mono, 2 makes stereo (mono is
    duplicated; more channels are refused), ``None`` keeps the file's. ``offset`` and ``duration``
    (seconds of the file) read only that part of it.
    """
    import soundfile

    path = Path(path)
    if sample_rate is not None:
        sample_rate = _check_sample_rate(sample_rate)
    if channels not in (None, 1, 2):
        raise ValueError(f"channels={channels!r}: expected 1 (mono), 2 (stereo) or None (as in the file)")
    check_number(offset, "offset", minimum=0)
    if duration is not None:
        check_number(duration, "duration", minimum=0)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such audio file")
    try:
        with soundfile.SoundFile(str(path)) as f:
            file_rate = f.samplerate
            start = min(round(offset * file_rate), f.frames)
            frames = -1 if duration is None else round(duration * file_rate)
            f.seek(start)
            array = f.read(frames, dtype="float32", always_2d=True)  # [T, C]
    except (soundfile.SoundFileError, RuntimeError, ValueError) as e:
        raise ValueError(f"{path}: not a readable audio file ({e})") from e
    wav = torch.from_numpy(array).T.contiguous()
    if channels == 1:
        wav = wav.mean(0, keepdim=True)
    elif channels == 2 and len(wav) == 1:
        wav = wav.expand(2, -1).contiguous()
    elif channels == 2 and len(wav) != 2:
        raise ValueError(f"{path}: has {len(wav)} channels; channels=2 takes mono or stereo files only")
    if sample_rate is not None and sample_rate != file_rate:
        wav = torchaudio.functional.resample(wav, file_rate, sample_rate)
    return wav, sample_rate or file_rate


def audio_frames(path: str | os.PathLike) -> tuple[int, int]:
    """(number of samples per channel, sample rate) of an audio file, read from its header."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such audio file")
    try:
        info = soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError) as e:
        raise ValueError(f"{path}: not a readable audio file ({e})") from e
    return info.frames, info.samplerate


def write_wavs(
    wavs: dict[str, torch.Tensor], sample_rate: int, out: str | os.PathLike, overwrite: bool = False
) -> list[Path]:
    """Write {file name: FloatTensor[C, T]} into ``out`` as 16-bit PCM WAV (clipped to [-1, 1]).

    Every target is checked before the first is written, and each file appears whole or not at all.
    """
    import soundfile

    sample_rate = _check_sample_rate(sample_rate)
    for name, wav in wavs.items():
        if not isinstance(wav, torch.Tensor) or wav.dim() != 2 or wav.shape[0] < 1:
            raise ValueError(f"wavs[{name!r}]: got {_shape(wav)}; expected a tensor [channels, samples]")
        if not bool(torch.isfinite(wav).all()):
            raise ValueError(f"wavs[{name!r}]: holds NaN or infinite values")
    out = Path(out)
    targets = {out / name: wav for name, wav in wavs.items()}
    taken = [str(p) for p in targets if p.exists()]
    if taken and not overwrite:
        raise FileExistsError(f"{len(taken)} output file(s) exist (e.g. {taken[0]}); pass --overwrite to replace them")
    written = []
    for path, wav in targets.items():
        array = wav.detach().float().clamp(-1, 1).T.cpu().numpy()  # [T, C]
        # The temporary file's name does not end in .wav, so the format is named explicitly.
        write = lambda tmp, a=array: soundfile.write(tmp, a, sample_rate, subtype="PCM_16", format="WAV")  # noqa: E731
        written.append(atomic_write(path, write, overwrite=True))
    return written
