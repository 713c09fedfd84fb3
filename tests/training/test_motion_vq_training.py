from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import Logger

from mgm.cli import train
from mgm.data.motion_features import FEATURE_DIM, RIC, normalisation_statistics
from mgm.data.motions import make_motions
from mgm.tokenizers import MotionVQ
from mgm.training.codebooks import perplexity
from mgm.training.motion_data import HumanML3DDataModule, Motions7DataModule, RandomCrops
from mgm.training.motion_vq import MotionVQTraining, masked_scalar_mean, mpjpe_mm
from tests.conftest import quiet_trainer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny() -> MotionVQ:
    torch.manual_seed(0)
    return MotionVQ(codebook_size=16, code_dim=8, width=16, depth=1, max_frames=32)


class Recorder(Logger):
    name, version = "recorder", "0"

    def __init__(self):
        super().__init__()
        self.metrics: dict[str, float] = {}

    def log_metrics(self, metrics, step=None):
        self.metrics.update(metrics)

    def log_hyperparams(self, *args, **kwargs):
        pass


def test_training_moves_weights_codebooks_and_takes_the_data_statistics(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    data = Motions7DataModule(num_clips=24, crop_frames=16, batch_size=8, val_fraction=0.2)
    system = MotionVQTraining(tiny, lr=1e-3, warmup_steps=1)
    recorder = Recorder()
    trainer = quiet_trainer(3, limit_val_batches=1, log_every_n_steps=1, logger=recorder)
    trainer.fit(system, data)
    after = tiny.state_dict()
    for name in ("encoders.0.0.weight", "decoders.1.7.weight", "codebooks.0.embedding", "codebooks.1.embedding"):
        assert not torch.equal(before[name], after[name]), name
    assert (tiny.codebooks[0].cluster_size > 0).any()
    assert torch.equal(tiny.mean, data.mean) and torch.equal(tiny.std, data.std)
    for name in ("train/perplexity_lower", "train/dead_codes_upper", "train/commitment", "val/mpjpe_mm"):
        assert name in recorder.metrics, name
    assert recorder.metrics["train/dead_codes_lower"] < 1, "only the first step finds every code dead"
    assert 1 <= recorder.metrics["train/perplexity_upper"] <= 16


def test_a_training_step_restarts_dead_codes_on_real_encoder_outputs(tiny):
    system = MotionVQTraining(tiny)
    features = torch.randn(2, 16, FEATURE_DIM)
    lengths = torch.tensor([16, 5])  # clip 1: tokens 0 and 1 are real, 2 and 3 padding
    features[1, 5:] = 0
    book = tiny.codebooks[1]
    _, terms = system(features, lengths, train=True)
    assert terms["restarted"] == [16, 16], "a fresh codebook is all dead: the batch fills it"
    with torch.no_grad():
        latents = tiny.encode_latents(features)[:, 1].transpose(1, 2)  # (B, N, C)
    real = latents[terms["real_tokens"]]
    assert terms["real_tokens"].sum() == 6
    assert torch.cdist(book.embedding, real).amin(1).max() < 0.2, "codes sit on (or move among) real outputs"
    assert torch.cdist(book.embedding, latents[1, 2:]).amin(1).min() > 0, "never on a padding token"
    book.cluster_size.fill_(1.0)
    book.cluster_size[:4] = 0  # four codes unused lately
    _, terms = system(features, lengths, train=True)
    assert terms["restarted"][1] == 4


def test_masked_loss_ignores_padding(tiny):
    system = MotionVQTraining(tiny).eval()
    features = torch.randn(2, 16, FEATURE_DIM)
    lengths = torch.tensor([16, 8])
    features[1, 8:] = 0
    recon, terms = system(features, lengths)
    error = torch.nn.functional.smooth_l1_loss(recon, features, reduction="none")
    expected = torch.cat([error[0], error[1, :8]]).mean()
    assert torch.allclose(terms["reconstruction"], expected)
    assert torch.allclose(terms["position"], torch.cat([error[0, :, RIC], error[1, :8, RIC]]).mean())
    assert masked_scalar_mean(torch.ones(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool)) == 0


def test_perplexity_and_mpjpe(tiny):
    assert perplexity(torch.arange(8), 16).item() == pytest.approx(8)
    assert perplexity(torch.zeros(10, dtype=torch.long), 16).item() == pytest.approx(1)
    clips = make_motions(2, seed=0, seconds=2.0)
    target = clips.features  # identity statistics: raw features
    lengths = torch.tensor([40, 30])
    assert mpjpe_mm(target, target, lengths, tiny)[0] == 0
    lifted = target.clone()
    lifted[..., RIC.start + 1 : RIC.stop : 3] += 0.01  # every joint but the root 10 mm higher
    error, local = mpjpe_mm(lifted, target, lengths, tiny)
    assert error.item() == pytest.approx(10 * 21 / 22, rel=1e-4) and local.item() == pytest.approx(
        10 * 21 / 22, rel=1e-4
    )


def test_random_crops_pad_short_clips_and_cut_long_ones():
    items = [{"motion": torch.arange(n * 2.0).view(n, 2), "length": n, "caption": ""} for n in (3, 10)]
    crops = RandomCrops(items, crop_frames=6)
    short, long = crops[0], crops[1]
    assert short["length"] == 3 and torch.equal(short["motion"][3:], torch.zeros(3, 2))
    assert long["length"] == 6 and long["motion"].shape == (6, 2)
    start = int(long["motion"][0, 0]) // 2
    assert torch.equal(long["motion"], items[1]["motion"][start : start + 6])
    with pytest.raises(ValueError, match="crop_frames=0"):
        RandomCrops(items, crop_frames=0)


def test_humanml3d_datamodule_uses_the_folder_splits(tmp_path):
    clips = make_motions(3, seed=0, seconds=3.0)
    (tmp_path / "new_joint_vecs").mkdir()
    (tmp_path / "texts").mkdir()
    for i in range(3):
        np.save(tmp_path / "new_joint_vecs" / f"{i:06d}.npy", clips.features[i].numpy())
        (tmp_path / "texts" / f"{i:06d}.txt").write_text("a person moves.#a/DET person/NOUN move/VERB#0.0#0.0\n")
    mean, std = normalisation_statistics(clips.features.flatten(0, 1))
    np.save(tmp_path / "Mean.npy", mean.numpy())
    np.save(tmp_path / "Std.npy", std.numpy())
    (tmp_path / "train.txt").write_text("000000\n000001\n")
    (tmp_path / "val.txt").write_text("000002\n")
    data = HumanML3DDataModule(tmp_path, crop_frames=16, batch_size=2)
    data.setup("fit")
    assert (len(data.train_set), len(data.val_set)) == (2, 1) and torch.equal(data.std, std)
    batch = next(iter(data.train_dataloader()))
    assert batch["motion"].shape == (2, 16, FEATURE_DIM) and batch["length"].tolist() == [16, 16]
    assert next(iter(data.val_dataloader()))["motion"].shape == (1, 60, FEATURE_DIM)


def test_train_motion_recipe_fast_dev_run(tmp_path):
    tiny = [
        "--model.init_args.tokenizer.init_args.codebook_size=16",
        "--model.init_args.tokenizer.init_args.code_dim=8",
        "--model.init_args.tokenizer.init_args.width=16",
        "--model.init_args.tokenizer.init_args.depth=1",
        "--data.init_args.num_clips=16",
        "--data.init_args.crop_frames=16",
        "--data.init_args.batch_size=4",
        "--trainer.callbacks.init_args.directory=" + str(tmp_path / "vq"),
    ]
    common = ["--trainer.fast_dev_run=true", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"]
    train.main(["fit", "--config", str(ROOT / "configs/motion/vq_motions.yaml"), *common, *tiny])
    saved = MotionVQ.from_pretrained(tmp_path / "vq")
    assert saved.spec.shape == (49,) and saved.config["codebook_size"] == 16
    assert not torch.equal(saved.std, torch.ones(FEATURE_DIM)), "the data's statistics travel with the tokenizer"


def test_train_text_conditioned_motion_transformer_fast_dev_run(tmp_path):
    from mgm.pipelines.motion import MotionPipeline

    torch.manual_seed(0)
    MotionVQ(codebook_size=16, code_dim=8, width=16, depth=1).save_pretrained(tmp_path / "vq")
    tiny = [
        "--model.init_args.model.init_args.codebook_sizes=[16, 16]",
        "--model.init_args.model.init_args.shape=[12]",
        "--model.init_args.model.init_args.dim=32",
        "--model.init_args.model.init_args.depth=1",
        "--model.init_args.model.init_args.num_heads=2",
        "--model.init_args.model.init_args.context_dim=16",
        "--model.init_args.text_encoder.init_args.dim=16",
        "--model.init_args.text_encoder.init_args.depth=1",
        "--model.init_args.text_encoder.init_args.num_heads=2",
        f"--data.init_args.tokenizer={tmp_path / 'vq'}",
        f"--data.init_args.cache={tmp_path / 'codes.safetensors'}",
        "--data.init_args.num_clips=40",
        "--data.init_args.batch_size=4",
        "--data.init_args.min_tokens=10",
        "--data.init_args.max_tokens=12",
        f"--trainer.callbacks.init_args.tokenizer={tmp_path / 'vq'}",
        f"--trainer.callbacks.init_args.directory={tmp_path / 'pipe'}",
    ]
    common = ["--trainer.fast_dev_run=true", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"]
    train.main(["fit", "--config", str(ROOT / "configs/motion/transformer_motions.yaml"), *common, *tiny])
    pipe = MotionPipeline.from_pretrained(tmp_path / "pipe")
    assert pipe.max_tokens == 12 and pipe.generate(texts="a person walks", seconds=2.0).shape == (1, 40, FEATURE_DIM)
