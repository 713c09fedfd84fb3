"""Two-process DDP training through train.py (gloo on the CPU), as a user runs it with
``--trainer.devices=2 --trainer.strategy=ddp``: at the end both ranks hold the same weights and
the same codebook state (EMA counts, restarted codes), one copy is saved, a pre-tokenization
cache is written once, and validation logs are reduced over the ranks.

Each case runs a shipped recipe shrunk to test size with dead-code restarts every few steps, so
a rank that restarted codes on its own batch, or moved its EMAs by its own statistics alone,
would differ from the other. The codec and motion-VQ cases take longer and run with ``-m slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open

from mgm.io import load_tensors

ROOT = Path(__file__).resolve().parents[2]


def shrink(recipe: str, out: Path, steps: int, model: dict, data: dict, watch: Path | None = None) -> Path:
    """The recipe at test size: ``model`` / ``data`` update the systems' init_args (a dict value
    updates the nested init_args of that key); the rank probe is added to the callbacks."""
    config = yaml.safe_load((ROOT / recipe).read_text())
    config["trainer"].update(
        max_steps=steps,
        default_root_dir=str(out),
        enable_progress_bar=False,
        log_every_n_steps=1,
        val_check_interval=steps // 2,
        limit_val_batches=2,
        enable_checkpointing=True,
    )
    saves = [c for c in config["trainer"]["callbacks"] if c["class_path"].startswith("mgm.training.Save")]
    for save in saves:
        save["init_args"]["directory"] = str(out / "saved")
        if "tokenizer" in save["init_args"]:  # a pipeline bundles the tokenizer the data were coded with
            save["init_args"]["tokenizer"] = data["tokenizer"]
    config["trainer"]["callbacks"] = saves + [
        {
            "class_path": "tests.training.ddp_probe.RankStates",
            "init_args": {"directory": str(out / "ranks"), "watch": str(watch) if watch else None},
        },
    ]
    update(config["model"]["init_args"], model)
    update(config["data"]["init_args"], data)
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(config))
    return path


def update(args: dict, updates: dict) -> None:
    """Update a class's init_args in place; a dict value for a nested class updates its init_args."""
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(args.get(key), dict) and "init_args" in args[key]:
            update(args[key]["init_args"], value)
        else:
            args[key] = value


def ddp_fit(config: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "fit",
        "--config",
        str(config),
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.accelerator=cpu",
    ]
    done = subprocess.run(command, cwd=config.parent, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def rank_states(out: Path) -> list[dict[str, torch.Tensor]]:
    files = sorted((out / "ranks").glob("rank*.safetensors"))
    assert [f.name for f in files] == ["rank0.safetensors", "rank1.safetensors"]
    return [load_tensors(f) for f in files]


def assert_ranks_agree(out: Path, log: str, must_hold: tuple[str, ...]) -> dict[str, torch.Tensor]:
    first, second = rank_states(out)
    assert first.keys() == second.keys()
    assert all(any(name in k for k in first) for name in must_hold), sorted(first)[:20]
    differ = [k for k in first if not torch.equal(first[k], second[k])]
    assert not differ, f"{len(differ)} of {len(first)} tensors differ between the ranks, e.g. {differ[:4]}"
    assert "sync_dist=True" not in log, "a validation value was logged without reducing it over the ranks"
    saved = out / "saved"
    assert (saved / "config.json").is_file() or (saved / "pipeline.json").is_file(), list(saved.iterdir())
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".") and "saved" in p.name]  # no debris
    return first


def test_image_vq_ddp_ranks_hold_one_codebook(tmp_path):
    out = tmp_path / "vq"
    vq = {
        "sample_size": 16,
        "block_out_channels": [8, 16],
        "layers_per_block": 1,
        "latent_channels": 4,
        "num_vq_embeddings": 32,
        "down_block_types": ["DownEncoderBlock2D"] * 2,
        "up_block_types": ["UpDecoderBlock2D"] * 2,
    }
    config = shrink(
        "configs/image/vq_shapes.yaml",
        out,
        8,
        model={"tokenizer": {"vq": vq}, "warmup_steps": 2, "restart_every": 2, "dead_code_threshold": 0.9},
        data={"num_images": 72, "image_size": 16, "batch_size": 4},
    )
    state = assert_ranks_agree(out, ddp_fit(config), ("usage", "embedding.weight"))
    assert 0 < float(state["usage"].sum()) < 1.01  # the EMA of shares, kept as one on both ranks


def test_masked_ddp_on_a_cache_written_once(tmp_path):
    from mgm.tokenizers import ImageVQ

    torch.manual_seed(0)
    ImageVQ.small(image_size=16, num_codes=32, channels=(8, 16), latent_channels=4).save_pretrained(tmp_path / "vq")
    cache, out = tmp_path / "codes.safetensors", tmp_path / "masked"
    config = shrink(
        "configs/image/transformer_shapes.yaml",
        out,
        8,
        model={
            "model": {"codebook_sizes": [32], "shape": [8, 8], "dim": 32, "depth": 1, "num_heads": 2, "dropout": 0.1},
            "warmup_steps": 2,
            "init_from": None,
        },
        data={
            "images": {"num_images": 64, "image_size": 16},
            "tokenizer": str(tmp_path / "vq"),
            "cache": str(cache),
            "batch_size": 8,
        },
        watch=cache,
    )
    log = ddp_fit(config)
    assert_ranks_agree(out, log, ("model.",))
    seen = []
    for rank in (0, 1):
        with safe_open(out / "ranks" / f"rank{rank}.safetensors", "pt") as f:
            seen.append(json.loads(f.metadata()["watch"]))
    stat = cache.stat()
    # Both ranks read the one file rank 0 wrote in prepare_data: a second write would be a new inode.
    assert seen[0] == seen[1] == [stat.st_ino, stat.st_mtime_ns]
    assert len(list(tmp_path.glob("codes*"))) == 1


@pytest.mark.slow
def test_codec_ddp_ranks_hold_one_codebook(tmp_path):
    out = tmp_path / "codec"
    config = shrink(
        "configs/audio/codec_tones.yaml",
        out,
        8,
        model={
            "tokenizer": {"n_filters": 4, "dimension": 8, "lstm": 0, "bins": 16, "num_codebooks": 2, "seconds": 0.25},
            "quantize_after": 2,
            "quantizer_dropout": True,
            "dead_code_threshold": 0.9,
            "warmup_steps": 2,
            "num_audio_samples": 0,
        },
        data={"num_clips": 40, "seconds": 0.25, "batch_size": 4},
    )
    state = assert_ranks_agree(out, ddp_fit(config), ("cluster_size", "embed_avg"))
    assert any(float(v.sum()) > 0 for k, v in state.items() if k.endswith("cluster_size"))


@pytest.mark.slow
def test_motion_vq_ddp_ranks_hold_one_codebook(tmp_path):
    out = tmp_path / "motion"
    config = shrink(
        "configs/motion/vq_motions.yaml",
        out,
        8,
        model={
            "tokenizer": {"codebook_size": 16, "code_dim": 8, "width": 16, "depth": 1, "max_frames": 32},
            "warmup_steps": 2,
            "dead_code_threshold": 0.9,
        },
        data={"num_clips": 40, "crop_frames": 16, "batch_size": 4},
    )
    assert_ranks_agree(out, ddp_fit(config), ("cluster_size", "embed_sum"))
