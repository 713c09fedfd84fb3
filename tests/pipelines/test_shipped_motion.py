"""The shipped Motions7 pipeline: it loads, and its motions do what their captions say (by the exact
checker on recovered joints). The threshold sits below the 0.867 measured with
benchmarks/motion_quality.py on 256 clips (README)."""

import torch

from mgm.data.motion_features import FPS
from mgm.data.motions import classify_motion, make_motions
from mgm.pipelines.motion import DEFAULT_MOTION_PIPELINE, MotionPipeline


def test_shipped_motion_pipeline_follows_its_captions():
    total = sum(p.stat().st_size for p in DEFAULT_MOTION_PIPELINE.rglob("*") if p.is_file())
    assert total < 20 * 2**20
    pipe = MotionPipeline.default()
    clips = make_motions(28, seed=5, labels=torch.arange(28) % 7, seconds=3.0)
    motion = pipe.generate(texts=clips.captions, seconds=3.0, seed=0)
    assert motion.shape == (28, 3 * FPS, 263)
    agreement = (classify_motion(motion) == clips.labels).float().mean()
    assert agreement >= 0.6, agreement  # chance is 1/7
