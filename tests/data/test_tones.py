import math

import pytest
import torch

from mgm.data.tones import (
    CLASSES,
    FREQUENCIES,
    MAX_RATE,
    MIN_RATE,
    TIMBRES,
    TonesDataset,
    classify_tones,
    dominant_pitch,
    make_tones,
    onset_rate,
    tone_parameters,
)

SR = 8000


def sines(frequencies, seconds=2.0, sample_rate=SR, amplitude=0.5, seed=0) -> torch.Tensor:
    """Pure sines [M, 1, T] at random phases."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(round(seconds * sample_rate), dtype=torch.float64) / sample_rate
    f = torch.tensor(frequencies, dtype=torch.float64)[:, None]
    phase = 2 * math.pi * torch.rand(len(frequencies), 1, generator=g, dtype=torch.float64)
    return (amplitude * torch.sin(2 * math.pi * f * t + phase)).float()[:, None]


def test_classes_are_the_equal_tempered_notes_c4_to_c5():
    assert CLASSES == ("C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5")
    assert FREQUENCIES[CLASSES.index("A4")] == 440.0
    assert FREQUENCIES[0] == pytest.approx(261.626, abs=1e-3) and FREQUENCIES[-1] == pytest.approx(523.251, abs=1e-3)


def test_checker_recovers_the_label_of_every_generated_clip():
    # 512 clips: 128 at each of 1, 2, 3 and 4 s, covering every timbre and rhythm.
    seen = set()
    for i, seconds in enumerate((1.0, 2.0, 3.0, 4.0)):
        wav, labels = make_tones(128, seconds, SR, seed=10 + i)
        params = tone_parameters(128, seed=10 + i)
        seen |= set(zip(params.timbres.tolist(), (params.rates > 0).tolist()))
        predicted = classify_tones(wav, SR)
        assert torch.equal(predicted, labels), f"{seconds} s: {(predicted != labels).sum()} clips misread"
        cents = 1200 * torch.log2(dominant_pitch(wav, SR) / params.frequencies)
        assert cents.abs().max() < 5
    assert seen == {(t, r) for t in range(len(TIMBRES)) for r in (False, True)}


def test_pure_sines_at_the_class_frequencies():
    for sample_rate in (8000, 16000):
        wav = sines(FREQUENCIES, sample_rate=sample_rate)
        assert torch.equal(classify_tones(wav, sample_rate), torch.arange(len(CLASSES)))
        assert torch.allclose(dominant_pitch(wav, sample_rate), torch.tensor(FREQUENCIES), atol=0.05)
    # Sub-bin accuracy (a bin is 8000 / 16384 = 0.49 Hz here), and 30 cents off still counts.
    assert dominant_pitch(sines([440.3, 300.1]), SR) == pytest.approx([440.3, 300.1], abs=0.05)
    near = [f * 2 ** (sign * 30 / 1200) for f in FREQUENCIES for sign in (-1, 1)]
    assert torch.equal(classify_tones(sines(near), SR), torch.arange(len(CLASSES)).repeat_interleave(2))


def test_pitches_between_the_classes_are_rejected():
    # 100 cents off a class where no other class sits (E4 + 100 cents would be F4), and 60 cents
    # off where the next class is a whole tone away.
    semitone, sixty = 2 ** (100 / 1200), 2 ** (60 / 1200)
    hz = dict(zip(CLASSES, FREQUENCIES))
    between = [hz["C4"] / semitone] + [hz[n] * semitone for n in ("C4", "D4", "F4", "G4", "A4", "C5")]
    between += [hz[n] * sixty for n in ("C4", "D4", "F4", "G4", "A4", "C5")]
    between += [hz[n] / sixty for n in ("C4", "D4", "E4", "G4", "A4", "B4")]
    assert (classify_tones(sines(between), SR) == -1).all()


def test_silence_and_near_silence_are_rejected():
    quiet = torch.randn(2, 1, 2 * SR, generator=torch.Generator().manual_seed(0)) * 1e-4
    wav = torch.cat([torch.zeros(2, 1, 2 * SR), quiet, sines([440.0], amplitude=1e-4)])
    assert (classify_tones(wav, SR) == -1).all()
    assert (onset_rate(wav, SR) == 0).all()


def test_same_seed_same_clips():
    a, la = make_tones(40, 1.0, SR, seed=3)
    b, lb = make_tones(40, 1.0, SR, seed=3)
    c, lc = make_tones(40, 1.0, SR, seed=4)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)
    assert torch.equal(tone_parameters(40, seed=3).labels, la)
    fixed = torch.arange(40) % len(CLASSES)
    d, ld = make_tones(40, 1.0, SR, seed=3, labels=fixed)
    assert torch.equal(ld, fixed) and torch.equal(classify_tones(d, SR), fixed)


@pytest.mark.parametrize("seconds", [1.0, 2.5, 4.0])
def test_shapes_and_value_range(seconds):
    wav, labels = make_tones(64, seconds, SR, seed=1)
    assert wav.shape == (64, 1, round(seconds * SR)) and wav.dtype == torch.float32
    assert labels.shape == (64,) and labels.dtype == torch.long
    peaks = wav.abs().amax(-1)[:, 0]
    assert peaks.min() >= 0.3 - 1e-5 and peaks.max() <= 0.9 + 1e-5
    assert peaks.std() > 0.1, "loudness varies"


def test_no_partial_above_0_45_of_the_sample_rate():
    # At 2 kHz, C5's harmonics 2..8 (1047..4186 Hz) lie above 0.45 * 2000 = 900 Hz and must be
    # dropped: were they there, they would alias to these frequencies below 1 kHz.
    c5 = FREQUENCIES[-1]
    aliases = [abs(n * c5 - round(n * c5 / 2000) * 2000) for n in range(2, 9)]
    wav, labels = make_tones(64, 1.0, 2000, seed=2, labels=torch.full((64,), len(CLASSES) - 1))
    params = tone_parameters(64, seed=2, labels=labels)
    clean = (params.noise == 0) & (params.rates == 0) & (params.timbres != TIMBRES.index("sine"))
    assert clean.sum() >= 8
    power = torch.fft.rfft(wav[clean, 0] * torch.hann_window(2000), n=2000).abs().pow(2)  # 1 Hz bins
    band = lambda f: power[:, round(f) - 3 : round(f) + 4].sum(-1)  # noqa: E731
    for alias in aliases:
        # A kept partial n >= 2 would carry at least 1/n^4 >= 2.4e-4 of the fundamental's power.
        assert (band(alias) / band(c5)).max() < 1e-5, alias
    assert torch.equal(classify_tones(wav, 2000), labels)


def test_onset_rate_follows_the_repetition_rate():
    for seconds in (1.0, 2.0, 4.0):
        wav, _ = make_tones(96, seconds, SR, seed=5)
        rates = tone_parameters(96, seed=5).rates
        assert ((rates == 0) | ((rates >= MIN_RATE) & (rates <= MAX_RATE))).all()
        measured = onset_rate(wav, SR)
        assert (measured - rates).abs().max() <= 1.0, seconds
        # A sustained note is one onset.
        assert torch.allclose(measured[rates == 0], torch.tensor(1 / seconds))


def test_dataset_items():
    data = TonesDataset(num=20, seconds=1.0, sample_rate=SR, seed=0)
    item = data[3]
    assert len(data) == 20 and data.classes == CLASSES and data.sample_rate == SR
    assert item["audio"].shape == (1, SR) and item["labels"].shape == () and item["labels"].dtype == torch.long


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seconds=0.1), "seconds=0.1"),
        (dict(sample_rate=1000), "sample_rate=1000"),
        (dict(labels=torch.tensor([0, 8])), "labels.*8"),
        (dict(labels=torch.tensor([-1, 0])), "labels.*-1"),
        (dict(labels=torch.tensor([0, 1, 2])), "labels.*shape"),
        (dict(labels=torch.tensor([0.0, 1.0])), "labels.*integer"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_tones(2, **kwargs)


def test_checker_rejects_bad_input():
    with pytest.raises(ValueError, match=r"wav.*\[M, C, T\]"):
        classify_tones(torch.zeros(SR), SR)
    with pytest.raises(ValueError, match="sample_rate=150"):
        dominant_pitch(torch.zeros(1, 1, 300), 150)
