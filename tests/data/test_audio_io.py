import math

import pytest
import torch

from mgm.data.audio_io import audio_frames, read_audio, write_wavs


def tone(frequency=440.0, seconds=0.5, sample_rate=8000, channels=1) -> torch.Tensor:
    t = torch.arange(round(seconds * sample_rate)) / sample_rate
    wav = 0.5 * torch.sin(2 * math.pi * frequency * t)
    return torch.stack([wav * (c + 1) / channels for c in range(channels)])  # channels differ in level


def test_round_trip_is_exact_to_16_bits(tmp_path):
    wav = tone(channels=2)
    (path,) = write_wavs({"a.wav": wav}, 8000, tmp_path)
    assert path == tmp_path / "a.wav" and audio_frames(path) == (4000, 8000)
    back, rate = read_audio(path)
    assert rate == 8000 and back.shape == (2, 4000) and back.dtype == torch.float32
    assert (back - wav).abs().max() <= 1 / 32768


def test_out_of_range_samples_are_clipped(tmp_path):
    (path,) = write_wavs({"loud.wav": torch.tensor([[-3.0, -1.0, 0.0, 0.5, 2.0]])}, 8000, tmp_path)
    back, _ = read_audio(path)
    # Clipped to full scale, not wrapped around the 16-bit range.
    torch.testing.assert_close(back, torch.tensor([[-1.0, -1.0, 0.0, 0.5, 1.0]]), atol=1e-4, rtol=0)


def test_resampling_changes_the_length_and_keeps_the_pitch(tmp_path):
    (path,) = write_wavs({"a.wav": tone(440.0, seconds=0.5, sample_rate=8000)}, 8000, tmp_path)
    up, rate = read_audio(path, sample_rate=24000)
    assert rate == 24000 and up.shape == (1, 12000)
    down, _ = read_audio(path, sample_rate=4000)
    assert down.shape == (1, 2000)
    # Still 440 Hz: the peak of the spectrum sits at bin 440 * T / rate.
    assert torch.fft.rfft(up[0]).abs().argmax() == 220
    same, rate = read_audio(path, sample_rate=8000)
    assert rate == 8000 and same.shape == (1, 4000)


def test_mono_and_stereo(tmp_path):
    mono_path, stereo_path = write_wavs({"m.wav": tone(channels=1), "s.wav": tone(channels=2)}, 8000, tmp_path)
    stereo, _ = read_audio(stereo_path)
    mixed, _ = read_audio(stereo_path, channels=1)
    assert mixed.shape == (1, 4000) and torch.allclose(mixed[0], stereo.mean(0))
    doubled, _ = read_audio(mono_path, channels=2)
    assert doubled.shape == (2, 4000) and torch.equal(doubled[0], doubled[1])
    assert read_audio(stereo_path, channels=2)[0].shape == (2, 4000)
    (multi,) = write_wavs({"q.wav": torch.zeros(4, 100)}, 8000, tmp_path)
    with pytest.raises(ValueError, match="4 channels"):
        read_audio(multi, channels=2)
    with pytest.raises(ValueError, match="channels=3"):
        read_audio(mono_path, channels=3)


def test_offset_and_duration_read_part_of_a_file(tmp_path):
    wav = torch.linspace(-1, 1, 8000)[None]
    (path,) = write_wavs({"ramp.wav": wav}, 8000, tmp_path)
    part, _ = read_audio(path, offset=0.25, duration=0.5)
    assert part.shape == (1, 4000) and (part - wav[:, 2000:6000]).abs().max() <= 1 / 32768
    tail, _ = read_audio(path, offset=0.9, duration=0.5)  # runs past the end: what is there
    assert tail.shape == (1, 800)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with pytest.raises(ValueError, match=r"bad\.wav.*not a readable audio file.*\(.+\)"):
        read_audio(bad)
    with pytest.raises(ValueError, match=r"bad\.wav"):
        audio_frames(bad)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        read_audio(tmp_path / "missing.wav")


def test_nothing_is_overwritten_without_asking(tmp_path):
    (first,) = write_wavs({"a.wav": tone()}, 8000, tmp_path)
    before = first.read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_wavs({"new.wav": tone(), "a.wav": tone(220.0)}, 8000, tmp_path)
    # All targets are checked first: neither file was written.
    assert first.read_bytes() == before and not (tmp_path / "new.wav").exists()
    write_wavs({"a.wav": tone(220.0)}, 8000, tmp_path, overwrite=True)
    assert first.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"], "no temporary files left behind"


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import soundfile

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(soundfile, "write", fail)
    with pytest.raises(OSError, match="disk full"):
        write_wavs({"a.wav": tone()}, 8000, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"wavs\['a.wav'\].*\[channels, samples\]"):
        write_wavs({"a.wav": torch.zeros(100)}, 8000, tmp_path)
    with pytest.raises(ValueError, match="sample_rate=0"):
        write_wavs({"a.wav": torch.zeros(1, 100)}, 0, tmp_path)
    with pytest.raises(ValueError, match="sample_rate=-8000"):
        read_audio(tmp_path / "x.wav", sample_rate=-8000)
