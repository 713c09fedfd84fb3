"""The shipped Tones8 pipeline: it loads, generates every plan, continues and infills, and the
clips carry their note (by the exact pitch checker) well above chance.

Measured with benchmarks/audio_quality.py on 256 clips (README): 0.957 to 0.996 agreement over
the four plans (soundstorm, the default, 0.965); real clips through the codec: 1.000.
"""

import pytest
import torch

from mgm.data.tones import classify_tones, make_tones
from mgm.pipelines import AudioPipeline
from mgm.pipelines.audio import DEFAULT_AUDIO_PIPELINE

NUM = 32  # four per note


@pytest.fixture(scope="module")
def pipe():
    return AudioPipeline.default()


def test_shipped_files_are_small():
    total = sum(p.stat().st_size for p in DEFAULT_AUDIO_PIPELINE.rglob("*") if p.is_file())
    assert total < 20 * 2**20


def test_generated_clips_play_their_note(pipe):
    labels = torch.arange(NUM) % 8
    audio = pipe.generate(NUM, labels=labels, seconds=1.0, seed=0)
    assert audio.shape == (NUM, 1, 8000)
    agreement = float((classify_tones(audio, pipe.sample_rate) == labels).float().mean())
    assert agreement >= 0.85, agreement  # chance is 1/8; measured 0.965 on 256 clips (README)


def test_continuation_keeps_the_prompt_and_its_note(pipe):
    real, labels = make_tones(8, 2.0, pipe.sample_rate, seed=3, labels=torch.arange(8))
    prompt = real[..., :4000]  # 0.5 s
    result = pipe.continue_codes(prompt, labels=labels)
    assert torch.equal(result.codes[..., :25], pipe.tokenizer.encode(prompt))
    continued = pipe.tokenizer.decode(result.codes)[..., 4000:]
    assert float((classify_tones(continued, pipe.sample_rate) == labels).float().mean()) >= 0.875
