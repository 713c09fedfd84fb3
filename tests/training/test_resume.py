"""Resumed training is bit-identical to uninterrupted training, for every training system.

Each case trains a tiny system for ``STEPS`` steps with a checkpoint every ``EVERY`` steps, then
trains a fresh copy from the checkpoint at ``RESUME_AT``, which falls mid-epoch, and compares
every weight and buffer exactly. The systems draw masks, condition dropout, dropout layers,
dead-code restarts, quantizer dropout and random crops, so any random state that the checkpoint
lost would show. The SIGKILL version of this, through train.py, is in test_resume_kill.py.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from mgm.models import ARTransformer, MaskedTransformer
from mgm.training import ARTraining, CodecTraining, MarkovCodesDataModule, MaskedTokenTraining, MotionVQTraining
from mgm.training.audio_data import TonesDataModule
from mgm.training.image_data import ShapesDataModule
from mgm.training.motion_data import Motions7DataModule
from mgm.training.resume import EpochSampler
from mgm.training.vq import ImageVQTraining

STEPS, EVERY, RESUME_AT = 16, 4, 8  # epochs of 6 or fewer batches: step 8 is mid-way through the second


def markov() -> MarkovCodesDataModule:
    return MarkovCodesDataModule(vocab_size=8, length=12, num_classes=2, num_sequences=100, batch_size=16)


def masked():
    model = MaskedTransformer([8], [12], dim=32, depth=1, num_heads=2, num_classes=2, dropout=0.1)
    return MaskedTokenTraining(model, warmup_steps=2, cond_drop_prob=0.2), markov()


def ar():
    model = ARTransformer(vocab_size=8, max_length=12, dim=32, depth=1, num_heads=2, num_classes=2, dropout=0.1)
    return ARTraining(model, warmup_steps=2, cond_drop_prob=0.2), markov()


def image_vq():
    from mgm.tokenizers import ImageVQ

    vq = ImageVQ.small(image_size=16, num_codes=32, channels=(16, 32), latent_channels=4)
    data = ShapesDataModule(num_images=44, image_size=16, batch_size=8, val_fraction=0.1)
    return ImageVQTraining(vq, warmup_steps=2, restart_every=3, dead_code_threshold=0.5), data


def codec():
    from mgm.tokenizers import EncodecTokenizer

    tokenizer = EncodecTokenizer.small(n_filters=8, dimension=16, bins=32, num_codebooks=2, seconds=0.25)
    data = TonesDataModule(num_clips=26, seconds=0.25, sample_rate=8000, batch_size=4, val_fraction=0.2)
    system = CodecTraining(
        tokenizer, warmup_steps=2, num_audio_samples=0, quantizer_dropout=True, dead_code_threshold=0.5
    )
    return system, data


def motion_vq():
    from mgm.tokenizers import MotionVQ

    tokenizer = MotionVQ(codebook_size=16, code_dim=8, width=16, depth=1, max_frames=32)
    data = Motions7DataModule(num_clips=30, crop_frames=16, batch_size=4, val_fraction=0.2)
    return MotionVQTraining(tokenizer, lr=1e-3, warmup_steps=2), data


SYSTEMS = {"masked": masked, "ar": ar, "image_vq": image_vq, "codec": codec, "motion_vq": motion_vq}


def train(build, directory, ckpt_path=None, every=EVERY) -> dict[str, torch.Tensor]:
    L.seed_everything(0, verbose=False)
    system, data = build()
    checkpoints = ModelCheckpoint(directory, "{step}", every_n_train_steps=every, save_top_k=-1)
    trainer = L.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        default_root_dir=directory,
        callbacks=[checkpoints],
    )
    trainer.fit(system, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    assert trainer.global_step == STEPS
    return {k: v.clone() for k, v in system.state_dict().items()}


SLOW = {"image_vq", "codec"}  # 40-100 s each on 2 cores: behind the slow marker


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in SYSTEMS])
def test_resumed_training_ends_bit_identical(name, tmp_path):
    build = SYSTEMS[name]
    whole = train(build, tmp_path / "whole")
    checkpoint = tmp_path / "whole" / f"step={RESUME_AT}.ckpt"
    resumed = train(build, tmp_path / "resumed", ckpt_path=checkpoint)
    assert whole.keys() == resumed.keys()
    differ = [k for k in whole if not torch.equal(whole[k], resumed[k])]
    assert not differ, f"{len(differ)} of {len(whole)} tensors differ after resuming, e.g. {differ[:3]}"
    # and the run did move: a resume that trained nothing would also "match" the checkpoint
    saved = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert any(not torch.equal(saved[k], whole[k]) for k in whole if k in saved)


def test_resume_from_an_epoch_end_checkpoint(tmp_path):
    # Markov data: 95 training sequences, 5 batches an epoch: step 10 is the end of the second.
    whole = train(masked, tmp_path / "whole", every=5)
    resumed = train(masked, tmp_path / "resumed", ckpt_path=tmp_path / "whole" / "step=10.ckpt", every=5)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_epoch_sampler_order_depends_on_seed_and_epoch_only_and_resumes():
    def keys(epoch, skip=0, ranks=1, rank=0, seed=5):
        sampler = EpochSampler(
            10, seed=seed, batch_size=2, num_replicas=ranks, rank=rank, epoch=epoch, skip_batches=skip
        )
        return list(sampler)

    torch.manual_seed(0)
    first = keys(1)
    torch.manual_seed(1)  # the global generator plays no part
    assert keys(1) == first and keys(2) != first and keys(1, seed=6) != first
    assert sorted(i for i, _ in first) == list(range(10))
    assert len({seed for _, seed in first}) == 10
    assert keys(1, skip=3) == first[6:]
    # two ranks: disjoint halves of the same epoch order, each item with the seed it has on one rank
    halves = [keys(1, ranks=2, rank=r) for r in (0, 1)]
    assert sorted(halves[0] + halves[1]) == sorted(first) and not set(halves[0]) & set(halves[1])
    assert keys(1, skip=2, ranks=2, rank=1) == halves[1][4:]
    sampler = EpochSampler(10, seed=5, batch_size=2, epoch=1, skip_batches=3)
    sampler.set_epoch(1)
    assert len(list(sampler)) == 4  # the same epoch: still resumed
    sampler.set_epoch(2)
    assert list(sampler) == keys(2) and len(sampler) == 10
