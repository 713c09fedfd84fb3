"""benchmarks.train_speed runs end to end on the CPU (the GPU run is issue 21's)."""

import json

from benchmarks import train_speed


def test_train_speed_runs_on_the_cpu(tmp_path):
    report = train_speed.main(["--shape", "tiny", "--device", "cpu", "--batch-sizes", "2", "--steps", "1",
                               "--matmul-size", "64", "--fsdp", "--out", str(tmp_path / "r.json"),
                               "--markdown", str(tmp_path / "r.md")])  # fmt: skip
    rows = report["rows"]
    assert [r["checkpointing"] for r in rows] == [False, True]
    assert all(r["samples_per_s"] > 0 and 0 < r["mfu"] for r in rows)
    assert rows[0]["step_tflop"] == rows[1]["step_tflop"] > 0, "useful FLOPs are counted without recomputation"
    assert "skipped" in report["fsdp"]
    assert json.loads((tmp_path / "r.json").read_text())["shape"] == "tiny"
    assert "| 2 | True |" in (tmp_path / "r.md").read_text()


def test_train_speed_decoders_run_on_the_cpu(tmp_path):
    report = train_speed.main(["--shape", "tiny", "--device", "cpu", "--no-training", "--no-compile", "--decoders",
                               "--matmul-size", "64", "--out", str(tmp_path / "r.json")])  # fmt: skip
    methods = {r["method"] for r in report["decoders"]}
    assert "maskgit 12, eager" in methods and "maskgit 12 cached (refresh 2), eager" in methods
    assert all(r["ms_per_sample"] > 0 for r in report["decoders"] + report["ar"])
    assert {r["method"] for r in report["ar"]} == {"ar", "sjd, window 16", "sjd, window 8"}
