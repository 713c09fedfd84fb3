"""Sampling and evaluation across processes (mgm.parallel): 2 CPU processes on gloo give the same
samples and scores as one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mgm.parallel import Ranks

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("num, batch, world", [(24, 8, 2), (20, 8, 2), (7, 8, 2), (100, 7, 3), (5, 1, 4)])
def test_blocks_are_whole_batches_covering_the_run_once(num, batch, world):
    blocks = [Ranks(rank, world).blocks(num, batch) for rank in range(world)]
    assert [i for block in blocks for i in block] == list(range(num))
    assert all(block.start % batch == 0 for block in blocks if block)
    sizes = [len(block) for block in blocks]
    assert max(sizes) - min(sizes) <= batch  # balanced to one batch


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    # One thread per process in both runs (Lightning's DDP processes would otherwise take cores / N):
    # the same float rounding, so the same bytes in 16-bit WAVs.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip


def test_two_process_evaluation_reports_the_scores_of_one(tmp_path):
    common = ["image", "--num", "20", "--batch-size", "8", "--reference-num", "32", "--device", "cpu",
              "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    one = run("mgm.cli.evaluate", *common, "--out", str(tmp_path / "one.json"))
    assert one.returncode == 0, one.stderr[-2000:]
    two = run("mgm.cli.evaluate", *common, "--out", str(tmp_path / "two.json"), "--devices", "2")
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (a["processes"], b["processes"], a["num_samples"], b["num_samples"]) == (1, 2, 20, 20)
    assert a["scores"]["judge_accuracy"] == pytest.approx(b["scores"]["judge_accuracy"], abs=1e-6)
    # Features of the same samples, extracted in other chunks and merged: equal to float rounding.
    assert a["scores"]["frechet_judge"] == pytest.approx(b["scores"]["frechet_judge"], rel=1e-5)
    assert a["nfe_per_sample"] == b["nfe_per_sample"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "one.json", "two.json"]  # one report each


@pytest.mark.parametrize(
    "modality, args, suffix, count",
    [
        ("image", ["--num", "12", "--batch-size", "4", "--labels", "2", "5", "7"], ".png", 13),  # + the grid
        pytest.param("audio", ["--num", "6", "--batch-size", "2", "--labels", "1", "4"], ".wav", 6,
                     marks=pytest.mark.slow),
        pytest.param("motion", ["a person walks", "someone waves", "a person jumps", "--batch-size", "1",
                                "--no-render", "--seconds", "2"], ".npy", 6, marks=pytest.mark.slow),  # + joints
    ],
)  # fmt: skip
def test_two_process_generation_writes_the_files_of_one(tmp_path, modality, args, suffix, count):
    common = [modality, *args, "--device", "cpu"]
    one = run("mgm.cli.generate", *common, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    two = run("mgm.cli.generate", *common, "--out", str(tmp_path / "two"), "--devices", "2")
    assert two.returncode == 0, two.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "two").iterdir())
    assert len(files) == count
    for name in files:
        a, b = tmp_path / "one" / name, tmp_path / "two" / name
        if name.endswith(".npy"):  # float32 features: the tokenizer decodes a call's motions together
            import numpy as np

            x, y = np.load(a), np.load(b)
            assert np.allclose(x, y, rtol=1e-4, atol=1e-4 * np.abs(x).max()), name
        else:
            assert a.read_bytes() == b.read_bytes(), name
    printed = [line for line in two.stdout.split() if line.endswith(suffix)]
    assert sorted(Path(p).name for p in printed) == files  # rank 0 prints each path once


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("mgm.cli.evaluate", ["image", "--samples", "x", "--devices", "2"], "--devices 2 splits the generation"),
        ("mgm.cli.generate", ["audio", "continue", "--devices", "2"], "multi-process generation is for sampling"),
        ("mgm.cli.generate", ["motion", "walk", "--task", "long", "--devices", "2"], "generation is for sampling"),
        ("mgm.cli.generate", ["image", "--devices", "0"], "--devices"),
    ],
)
def test_devices_refusals(tmp_path, module, args, message):
    if "x" in args:
        (tmp_path / "x").mkdir()
        args = [str(tmp_path / "x") if a == "x" else a for a in args]
    result = run(module, *args, "--out", str(tmp_path / "out.json" if "evaluate" in module else tmp_path / "o"))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "o").exists()


def test_a_call_with_one_label_per_sample_keeps_them_after_first_index(tiny_image_pipeline):
    """Labels as long as the call are one per sample (not re-cycled from first_index): a run split into
    calls with its labels sliced is the one call."""
    pipe = tiny_image_pipeline
    labels = torch.tensor([3, 1, 4, 1, 5, 2, 6]) % pipe.num_classes
    whole = pipe.generate_codes(7, labels=labels, seed=3, num_steps=3).codes
    parts = [pipe.generate_codes(n, labels=labels[f : f + n], seed=3, num_steps=3, first_index=f).codes
             for f, n in ((0, 3), (3, 4))]  # fmt: skip
    assert torch.equal(torch.cat(parts), whole)


@pytest.mark.slow
def test_two_process_motion_evaluation_reports_the_scores_of_one(tmp_path):
    """Motion's scores rank and pair samples, so rank 0 gathers the motions: every score is one process's."""
    common = ["motion", "--num", "32", "--batch-size", "8", "--reference-num", "32", "--device", "cpu",
              "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    reports = []
    for devices in ("1", "2"):
        result = run("mgm.cli.evaluate", *common, "--out", str(tmp_path / f"{devices}.json"), "--devices", devices)
        assert result.returncode == 0, result.stderr[-2000:]
        reports.append(json.loads((tmp_path / f"{devices}.json").read_text()))
    one, two = (r["scores"] for r in reports)
    assert one.keys() == two.keys() and "r_precision_top1" in one
    for key in one:
        assert one[key] == pytest.approx(two[key], rel=1e-5, abs=1e-6), key
