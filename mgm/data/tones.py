"""Tones8: an embedded, procedurally synthesised, labelled mono audio dataset, and its exact checker.

The label is the pitch class: one of the eight notes C4 D4 E4 F4 G4 A4 B4 C5 (equal temperament,
A4 = 440 Hz). Each clip plays its one note with variety that never changes which pitch dominates:

- timbre: a sine; "square" and "saw" as sums of a few harmonics with amplitudes 1/n; a "pluck"
  (harmonics at 1/n^2) decaying exponentially from each onset. The fundamental is always the
  strongest partial, and partials above ``0.45 * sample_rate`` are dropped (no aliasing);
- rhythm: sustained, or the note repeated 2 to 6 times per second, each note gated by a short
  attack and release with silence between notes;
- loudness (peak between 0.3 and 0.9), a random starting phase, and on half of the clips a quiet
  Gaussian noise floor (standard deviation at most 1% of the peak; each clip reads one shared
  noise sequence from its own random offset).

Deterministic: the same seed gives the same clips, bit for bit on the same machine.

Dimension legend: M clips, C channels (1 here), T samples.
Audio is FloatTensor[M, 1, T] in [-1, 1].

The checker reads the pitch off the spectrum: ``dominant_pitch`` (Hz), ``classify_tones`` (label,
or -1 for silence or a pitch more than 50 cents from every class) and ``onset_rate`` (notes per
second).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

CLASSES = ("C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5")
NUM_CLASSES = len(CLASSES)
_SEMITONES_FROM_A4 = (-9, -7, -5, -4, -2, 0, 2, 3)
FREQUENCIES = tuple(440.0 * 2 ** (s / 12) for s in _SEMITONES_FROM_A4)  # Hz, 261.63 ... 523.25

TIMBRES = ("sine", "square", "saw", "pluck")
# Partial amplitudes per timbre (harmonics 1..8). Every row falls with n, so the fundamental leads.
_HARMONICS = 8
_n = torch.arange(1, _HARMONICS + 1, dtype=torch.float32)
_PARTIALS = torch.stack(
    [
        (_n == 1).float(),  # sine
        torch.where(_n % 2 == 1, 1 / _n, 0.0),  # square-like: odd harmonics 1, 3, 5, 7
        torch.where(_n <= 6, 1 / _n, 0.0),  # saw-like: harmonics 1..6
        torch.where(_n <= 4, 1 / _n**2, 0.0),  # pluck: harmonics 1..4, soft
    ]
)
del _n
MAX_PARTIAL_FRACTION = 0.45  # partials above this fraction of the sample rate are dropped

MIN_SECONDS = 0.25
MIN_RATE, MAX_RATE = 2.0, 6.0  # repeated notes per second
MIN_PEAK, MAX_PEAK = 0.3, 0.9
MAX_NOISE = 0.01  # noise standard deviation relative to the peak
ATTACK_SECONDS, RELEASE_SECONDS = 0.005, 0.02

# Checker constants.
SILENCE_RMS = 1e-3  # clips quieter than this (-60 dBFS) are "silent" and classify as -1
MAX_CENTS = 50.0  # a peak further than half a semitone from every class classifies as -1
PITCH_RANGE_HZ = (100.0, 2000.0)  # where dominant_pitch looks for the spectral peak
ONSET_FRAME_SECONDS = 0.02
ONSET_HIGH, ONSET_LOW = 0.5, 0.25  # frame RMS relative to the clip's loudest frame (hysteresis)

# Samples synthesised at once (clips x T): big enough that each op's thread start-up is paid
# rarely, small enough to keep memory traffic modest.
_CHUNK_SAMPLES = 2**20
_NOISE_BANK_EXTRA = 8192  # noise bank length beyond one clip: the range of random offsets


@dataclass(frozen=True)
class ToneParameters:
    """The per-clip choices behind a batch of Tones8 clips (all tensors [M])."""

    labels: torch.Tensor  # LongTensor, index into CLASSES
    timbres: torch.Tensor  # LongTensor, index into TIMBRES
    rates: torch.Tensor  # notes per second; 0 for a sustained note
    duty: torch.Tensor  # fraction of each repetition period that sounds (repeated notes)
    decay: torch.Tensor  # pluck decay time constant in seconds (inf for the other timbres)
    peaks: torch.Tensor  # peak absolute amplitude
    phases: torch.Tensor  # starting phase of the fundamental, radians
    noise: torch.Tensor  # noise standard deviation relative to the peak (0: none)

    @property
    def frequencies(self) -> torch.Tensor:
        return torch.tensor(FREQUENCIES)[self.labels]


def _check_labels(num: int, labels) -> torch.Tensor | None:
    if labels is None:
        return None
    labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.shape != (num,):
        raise ValueError(
            f"labels: got a {labels.dtype} tensor of shape {tuple(labels.shape)}; expected {num} integer class ids"
        )
    labels = labels.long()
    if num and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        bad = labels[(labels < 0) | (labels >= NUM_CLASSES)][0].item()
        raise ValueError(f"labels: got class id {bad}; expected ids in [0, {NUM_CLASSES}) for {CLASSES}")
    return labels


def _draw(num: int, labels: torch.Tensor | None, g: torch.Generator) -> ToneParameters:
    rand = lambda: torch.rand(num, generator=g)  # noqa: E731
    if labels is None:
        labels = torch.randint(NUM_CLASSES, (num,), generator=g)
    timbres = torch.randint(len(TIMBRES), (num,), generator=g)
    repeated = rand() < 0.5
    rates = torch.where(repeated, MIN_RATE + (MAX_RATE - MIN_RATE) * rand(), 0.0)
    duty = 0.4 + 0.35 * rand()  # the gap between notes stays >= 40 ms, enough for onset_rate
    decay = torch.where(timbres == TIMBRES.index("pluck"), 0.1 + 0.3 * rand(), math.inf)
    peaks = MIN_PEAK + (MAX_PEAK - MIN_PEAK) * rand()
    phases = 2 * math.pi * rand()
    noise = torch.where(rand() < 0.5, MAX_NOISE * (0.2 + 0.8 * rand()), 0.0)
    return ToneParameters(labels, timbres, rates, duty, decay, peaks, phases, noise)


def _check_arguments(num: int, seconds: float, sample_rate: int) -> None:
    if num < 0:
        raise ValueError(f"num={num}: expected a number of clips >= 0")
    if not seconds >= MIN_SECONDS:
        raise ValueError(f"seconds={seconds}: expected a clip length of at least {MIN_SECONDS} s")
    lowest = math.ceil(max(FREQUENCIES) / MAX_PARTIAL_FRACTION)
    if sample_rate < lowest:
        raise ValueError(
            f"sample_rate={sample_rate}: expected at least {lowest} Hz, so that C5 ({max(FREQUENCIES):.2f} Hz) "
            f"stays below {MAX_PARTIAL_FRACTION} * sample_rate"
        )


def tone_parameters(num: int, seed: int = 0, labels: torch.Tensor | None = None) -> ToneParameters:
    """The choices ``make_tones(num, ..., seed=seed, labels=labels)`` makes for its clips."""
    if num < 0:
        raise ValueError(f"num={num}: expected a number of clips >= 0")
    return _draw(num, _check_labels(num, labels), torch.Generator().manual_seed(seed))


def make_tones(
    num: int,
    seconds: float = 2.0,
    sample_rate: int = 8000,
    seed: int = 0,
    labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (wav FloatTensor[num, 1, T] in [-1, 1], labels LongTensor[num]), T = round(seconds * sample_rate).

    ``labels`` (LongTensor[num]) fixes the classes; by default they are drawn. ``seconds`` >= 0.25
    (1 to 4 s is what the tests cover); ``sample_rate`` must keep C5 under 0.45 * sample_rate.
    The same seed gives the same clips; ``tone_parameters`` gives the choices behind them.
    """
    _check_arguments(num, seconds, sample_rate)
    labels = _check_labels(num, labels)
    g = torch.Generator().manual_seed(seed)
    p = _draw(num, labels, g)
    num_samples = round(seconds * sample_rate)
    wav = torch.empty(num, 1, num_samples)
    # A bank of noise that each noisy clip reads at its own random offset: one randn call instead
    # of one per clip (randn costs more than everything else here together).
    noise_bank = torch.randn(num_samples + _NOISE_BANK_EXTRA, generator=g).unfold(0, num_samples, 1)
    noise_offsets = torch.randint(_NOISE_BANK_EXTRA + 1, (num,), generator=g)
    t = torch.arange(num_samples) / sample_rate  # seconds, [T]
    # Clips are made in groups of one label (one partial basis) and one rhythm (one envelope rule).
    for label in range(NUM_CLASSES):
        basis = _partial_basis(FREQUENCIES[label], num_samples, sample_rate)  # [2H, T]
        for sustained in (True, False):
            clips = ((p.labels == label) & ((p.rates == 0) == sustained)).nonzero()[:, 0]
            for chunk in clips.split(max(1, _CHUNK_SAMPLES // num_samples)):
                tone = _coefficients(p, chunk, FREQUENCIES[label], sample_rate) @ basis  # [m, T]
                _apply_envelope(tone, p, chunk, t, seconds, sustained)
                tone /= tone.abs().amax(1, keepdim=True).clamp_min(1e-12)
                noisy = p.noise[chunk] > 0
                if noisy.any():
                    tone[noisy] += p.noise[chunk[noisy], None] * noise_bank[noise_offsets[chunk[noisy]]]
                tone *= p.peaks[chunk, None] / tone.abs().amax(1, keepdim=True).clamp_min(1e-12)
                wav[chunk, 0] = tone
    return wav, p.labels


def _partial_basis(frequency: float, num_samples: int, sample_rate: int) -> torch.Tensor:
    """[sin(n w k); cos(n w k)] for harmonics n = 1..H and samples k: FloatTensor[2H, T]."""
    n = torch.arange(1, _HARMONICS + 1, dtype=torch.float64)[:, None]
    cycles = n * (frequency / sample_rate) * torch.arange(num_samples, dtype=torch.float64)
    theta = (2 * math.pi) * (cycles - cycles.floor())  # reduced mod one cycle: exact over 4 s
    return torch.cat([theta.sin(), theta.cos()]).float()


def _coefficients(p: ToneParameters, clips: torch.Tensor, frequency: float, sample_rate: int) -> torch.Tensor:
    """Weights of ``_partial_basis`` for ``clips``: FloatTensor[m, 2H].

    sum_n a_n sin(n (w k + phi)) = sum_n a_n cos(n phi) sin(n w k) + a_n sin(n phi) cos(n w k).
    """
    n = torch.arange(1, _HARMONICS + 1, dtype=torch.float32)
    amplitudes = _PARTIALS[p.timbres[clips]] * (n * frequency <= MAX_PARTIAL_FRACTION * sample_rate)  # [m, H]
    phase = n * p.phases[clips, None]  # [m, H]
    return torch.cat([amplitudes * phase.cos(), amplitudes * phase.sin()], dim=1)


def _apply_envelope(
    tone: torch.Tensor, p: ToneParameters, clips: torch.Tensor, t: torch.Tensor, seconds: float, sustained: bool
) -> None:
    """Multiply ``tone`` [m, T] of ``clips`` (all sustained or all repeated) by their envelopes, in place.

    Every clip fades out over the last ``RELEASE_SECONDS`` (no click where a note is cut off).
    """
    end = t > seconds - RELEASE_SECONDS
    tone[:, end] *= ((seconds - t[end]) / RELEASE_SECONDS).clamp(0, 1)
    if sustained:  # one note, onset at 0, lasting the whole clip: only the attack is left
        u = t
        attack = t < ATTACK_SECONDS
        tone[:, attack] *= t[attack] / ATTACK_SECONDS
    else:
        rates = p.rates[clips, None]
        u = t - (t * rates).floor_() / rates  # time since the latest onset, [m, T]
        note_length = p.duty[clips, None] / rates
        tone *= (u / ATTACK_SECONDS).clamp_(max=1) * ((note_length - u) / RELEASE_SECONDS).clamp_(0, 1)
    plucked = p.decay[clips].isfinite()
    if plucked.any():
        tone[plucked] *= torch.exp(-(u if sustained else u[plucked]) / p.decay[clips[plucked], None])


class TonesDataset(Dataset):
    """Tones8 as a Dataset of ``{"audio": FloatTensor[1, T], "labels": LongTensor[]}`` items.

    Generated once, in memory (num * seconds * sample_rate * 4 bytes: 640 MB for the defaults).
    """

    def __init__(self, num: int = 10_000, seconds: float = 2.0, sample_rate: int = 8000, seed: int = 0):
        self.audio, self.labels = make_tones(num, seconds, sample_rate, seed)
        self.sample_rate, self.classes = sample_rate, CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"audio": self.audio[index], "labels": self.labels[index]}


# ----------------------------------------------------------------------------------------------
# The exact checker


def _check_wav(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """[M, C, T] -> the mono mix [M, T] (float32)."""
    if wav.dim() != 3:
        raise ValueError(f"wav: got shape {tuple(wav.shape)}; expected [M, C, T]")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate={sample_rate}: expected a positive number of samples per second")
    return wav.float().mean(1)


def dominant_pitch(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The frequency (Hz) of the strongest spectral peak between 100 Hz and 2 kHz: FloatTensor[M].

    Magnitude spectrum of the Hann-windowed mono mix (zero-padded to a power of two), the peak
    bin refined by a parabola through the log magnitudes of it and its two neighbours.
    """
    mono = _check_wav(wav, sample_rate)
    num_samples = mono.shape[-1]
    n_fft = 2 ** math.ceil(math.log2(max(num_samples, 16)))
    window = torch.hann_window(num_samples, periodic=False, dtype=mono.dtype, device=mono.device)
    hz_per_bin = sample_rate / n_fft
    low = max(1, math.ceil(PITCH_RANGE_HZ[0] / hz_per_bin))
    high = min(n_fft // 2 - 1, math.floor(min(PITCH_RANGE_HZ[1], sample_rate / 2) / hz_per_bin))
    if high <= low:
        raise ValueError(
            f"sample_rate={sample_rate}: expected more than {2 * PITCH_RANGE_HZ[0]:.0f} Hz to find a pitch above "
            f"{PITCH_RANGE_HZ[0]:.0f} Hz"
        )
    pitch = torch.empty(len(mono), device=mono.device)
    for start in range(0, len(mono), 256):  # bounded memory for big batches
        x = mono[start : start + 256] * window
        log_magnitude = torch.fft.rfft(x, n=n_fft).abs().clamp_min(1e-12).log()  # [m, F]
        peak = log_magnitude[:, low : high + 1].argmax(-1) + low
        a, b, c = (log_magnitude.gather(1, (peak + d)[:, None])[:, 0] for d in (-1, 0, 1))
        curvature = a - 2 * b + c
        offset = torch.where(curvature < 0, 0.5 * (a - c) / curvature.clamp(max=-1e-12), 0.0)
        pitch[start : start + 256] = (peak + offset.clamp(-0.5, 0.5)) * hz_per_bin
    return pitch


def classify_tones(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The class (index into CLASSES) nearest to the dominant pitch in log frequency: LongTensor[M].

    -1 where the clip is silent (RMS below ``SILENCE_RMS``) or its pitch is more than
    ``MAX_CENTS`` (half a semitone) from every class.
    """
    mono = _check_wav(wav, sample_rate)
    pitch = dominant_pitch(wav, sample_rate)
    cents = 1200 * torch.log2(pitch[:, None] / torch.tensor(FREQUENCIES, device=pitch.device))  # [M, classes]
    distance, nearest = cents.abs().min(-1)
    silent = mono.pow(2).mean(-1).sqrt() < SILENCE_RMS
    return torch.where(silent | (distance > MAX_CENTS), -1, nearest)


def onset_rate(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Note onsets per second: FloatTensor[M].

    The mono mix is cut into 20 ms frames; an onset is a frame whose RMS rises to at least
    ``ONSET_HIGH`` of the clip's loudest frame after the envelope fell below ``ONSET_LOW`` (the clip
    starts below). Silent clips have no onsets.
    """
    mono = _check_wav(wav, sample_rate)
    frame = max(1, round(ONSET_FRAME_SECONDS * sample_rate))
    num_frames = mono.shape[-1] // frame
    seconds = mono.shape[-1] / sample_rate
    if num_frames == 0:
        raise ValueError(
            f"wav: {mono.shape[-1]} samples; expected at least one {ONSET_FRAME_SECONDS * 1000:.0f} ms frame"
        )
    rms = mono[:, : num_frames * frame].reshape(len(mono), num_frames, frame).pow(2).mean(-1).sqrt()
    loudest = rms.amax(-1, keepdim=True)
    level = rms / loudest.clamp_min(1e-12)
    armed = torch.ones(len(mono), dtype=torch.bool, device=mono.device)
    onsets = torch.zeros(len(mono), device=mono.device)
    for f in range(num_frames):
        above, below = level[:, f] >= ONSET_HIGH, level[:, f] < ONSET_LOW
        onsets += (above & armed).float()
        armed = (armed & ~above) | below
    return torch.where(loudest[:, 0] < SILENCE_RMS, 0.0, onsets / seconds)
