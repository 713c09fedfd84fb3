"""A training killed with SIGKILL and resumed with ``--ckpt_path`` ends bit-identical to an
uninterrupted one: the toy recipe through train.py, as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from mgm.io import load_tensors

ROOT = Path(__file__).resolve().parents[2]
STEPS, EVERY = 160, 20


def recipe(tmp_path: Path, name: str) -> Path:
    """The toy recipe at test size (15 batches an epoch), a checkpoint every EVERY steps."""
    config = yaml.safe_load((ROOT / "configs/markov_toy.yaml").read_text())
    out = tmp_path / name
    config["trainer"].update(max_steps=STEPS, default_root_dir=str(out), enable_progress_bar=False)
    config["trainer"]["callbacks"] = [
        {"class_path": "mgm.training.SavePretrained", "init_args": {"directory": str(out / "model")}},
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {
                "dirpath": str(out / "checkpoints"),
                "filename": "{step}",
                "every_n_train_steps": EVERY,
                "save_top_k": -1,
            },
        },
    ]
    config["model"]["init_args"]["model"]["init_args"].update(dim=32, depth=1, num_heads=2, dropout=0.1)
    config["data"]["init_args"].update(num_sequences=512, batch_size=32)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train(config: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(config), *extra]
    return subprocess.Popen(command, cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()[-2000:]


def test_a_killed_training_resumes_bit_identical(tmp_path):
    whole = train(recipe(tmp_path, "whole"))
    killed_config = recipe(tmp_path, "killed")
    killed = train(killed_config)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.monotonic() + 240
    while not (checkpoints / "step=60.ckpt").exists():  # step 40's file is then complete
        assert killed.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "model").exists(), "the kill came after the run finished"
    # step 40 is mid-epoch (15 batches an epoch): the sampler has to start part-way
    finish(train(killed_config, "--ckpt_path", str(checkpoints / "step=40.ckpt")))
    finish(whole)
    a = load_tensors(tmp_path / "whole" / "model" / "model.safetensors")
    b = load_tensors(tmp_path / "killed" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a)} weights differ, e.g. {differ[:3]}"
