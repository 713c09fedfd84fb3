"""train.py / generate.py as a user runs them, at toy size."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mgm.cli import generate, train
from mgm.data import load_codes

ROOT = Path(__file__).resolve().parents[1]


def test_train_then_generate_codes(tmp_path, capsys):
    model_dir = tmp_path / "model"
    train.main(
        [
            "fit",
            "--config",
            str(ROOT / "configs/markov_toy.yaml"),
            "--trainer.max_steps=3",
            "--trainer.logger=false",
            "--trainer.enable_checkpointing=false",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.callbacks.init_args.directory={model_dir}",
            "--data.init_args.num_sequences=256",
        ]
    )
    assert (model_dir / "config.json").is_file() and (model_dir / "model.safetensors").is_file()

    out = tmp_path / "samples"
    args = [
        "codes",
        "--model",
        str(model_dir),
        "--num",
        "4",
        "--num-steps",
        "3",
        "--labels",
        "0",
        "1",
        "--guidance-scale",
        "1.0",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    paths = generate.main(args)
    assert capsys.readouterr().out.split() == [str(out / "codes.safetensors")]
    codes, labels, spec = load_codes(paths[0])
    assert codes.shape == (4, 1, 24) and labels.tolist() == [0, 1, 0, 1]
    again = generate.main([*args, "--overwrite"])
    assert torch.equal(load_codes(again[0])[0], codes), "same seed, same samples"
    with pytest.raises(SystemExit, match="--overwrite"):
        generate.main(args)


def test_import_mgm_is_light():
    code = "import sys, mgm; assert 'transformers' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
