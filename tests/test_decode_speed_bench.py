"""Smoke test of benchmarks/decode_speed.py (and gpu_step.py): the CPU path on a minuscule shape, one repeat."""

from __future__ import annotations

import json

import pytest

from benchmarks import decode_speed, gpu_step
from benchmarks.amused_peer import AMUSED_ROW
from benchmarks.mgm_methods import ADAPTER_ROW, MASKGIT_ROW
from benchmarks.muse_peer import MUSE_ROW
from mgm.decoding.maskgit import MASKGIT
from mgm.decoding.recap import RECAP

ROW_FIELDS = {
    "method", "family", "guided", "guidance", "batch", "ms_per_sample", "ms_per_sample_min", "ms_per_sample_max",
    "ms_per_sample_iqr", "samples_per_s", "nfe", "full_pass_equivalents", "peak_memory_mb", "memory_kind",
    "valid_codes", "machine", "speedup_vs_peer",
}  # fmt: skip


def run(tmp_path, methods: list[str]) -> tuple[dict, str]:
    out, table = tmp_path / "results.json", tmp_path / "table.md"
    argv = ["--shape", "tiny", "--device", "cpu", "--repeats", "1", "--methods", *methods]
    decode_speed.main([*argv, "--out", str(out), "--markdown", str(table)])
    return json.loads(out.read_text()), table.read_text()


def test_mgm_rows_on_cpu(tmp_path):
    report, table = run(tmp_path, ["mgm"])
    assert report["device"] == "cpu" and "torch" in report["machine"] and report["skipped"] == {}
    rows = report["rows"]
    # maskgit and recap, unguided and guided, at batch 1 and 2.
    assert len(rows) == 8 and {r["batch"] for r in rows} == {1, 2} and {r["guided"] for r in rows} == {False, True}
    for row in rows:
        assert ROW_FIELDS <= set(row), ROW_FIELDS - set(row)
        assert row["valid_codes"] and row["ms_per_sample"] > 0 and row["samples_per_s"] > 0
        assert row["nfe"] == 4 and row["peak_memory_mb"] is not None
    for row in rows:
        if row["guided"] and row["method"] == MASKGIT_ROW:
            assert row["full_pass_equivalents"] == 8  # 4 steps, conditional and null rows
    assert all("step_gflop" in r and r["step_tflops"] > 0 for r in rows if r["batch"] == 2)
    assert table.count("\n| mgm ") == 8 and table.count(report["machine"]) == 8


def test_peers_rows_on_cpu(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("muse_maskgit_pytorch")
    report, table = run(tmp_path, ["muse", "amused"])
    methods = {r["method"] for r in report["rows"]}
    assert AMUSED_ROW in methods and MUSE_ROW in methods
    assert all(r["valid_codes"] for r in report["rows"])
    adapter = [r for r in report["rows"] if r["method"] == ADAPTER_ROW]
    assert adapter and all(r["speedup_vs_peer"] > 0 for r in adapter)
    muse_guided = [r for r in report["rows"] if r["family"] == "muse-maskgit-pytorch" and r["guided"]]
    assert muse_guided and all(r["nfe"] == 8 for r in muse_guided)  # two sequential forwards per step
    # mgm through UVit2DAdapter reveals as many tokens per step as AmusedPipeline, with and without guidance.
    checks = report["reveal_checks"]
    assert len(checks) == 2 and all(c["agree"] and sum(c["ours"]) == 16 for c in checks)
    assert "agree" in table


def test_cast_weights_and_the_float32_fallback():
    """--cast stores the weights in bfloat16; muse's bfloat16 path fails, is reported, and its rows
    are measured in float32 (named so), while mgm's rows stay in bfloat16."""
    pytest.importorskip("muse_maskgit_pytorch")
    argv = ["--shape", "tiny", "--device", "cpu", "--repeats", "1", "--methods", "mgm", "muse", "--no-flops"]
    report = decode_speed.main([*argv, "--dtype", "bfloat16", "--cast", "--match", MASKGIT.name, "MaskGit"])
    assert report["cast"] and len(report["failed"]) == 2 and all("muse" in f for f in report["failed"])
    precision = {(r["family"], r["dtype"]) for r in report["rows"]}
    assert precision == {("mgm", "bfloat16 weights"), ("muse-maskgit-pytorch", "float32")}
    assert all(RECAP.name not in r["method"] for r in report["rows"]) and all(r["valid_codes"] for r in report["rows"])


def test_gpu_step_script_runs_on_cpu(tmp_path):
    out, table = tmp_path / "s.json", tmp_path / "s.md"
    argv = ["--shape", "tiny", "--device", "cpu", "--repeats", "1", "--matmul-size", "64", "--large-batch", "4"]
    report = gpu_step.main([*argv, "--out", str(out), "--markdown", str(table)])
    assert [r["guided"] for r in report["batch1"]] == [False, True]
    assert all(r["forward_graph_ms"] is None and r["step_eager_ms"] > 0 for r in report["batch1"])
    assert report["large_batch"]["gflop"] > 0 and report["matmul_peak"]["tflops"] > 0
    assert json.loads(out.read_text())["shape"] == "tiny" and "| unguided |" in table.read_text()


def test_a_shipped_pipeline_with_its_own_settings(tmp_path):
    table_path = tmp_path / "t.md"
    argv = ["--pipeline", "image", "--repeats", "1", "--batch-sizes", "1", "2", "--markdown", str(table_path)]
    report = decode_speed.main(argv)
    assert report["shape"] == "pipeline image" and report["shape_config"]["method"] == MASKGIT.name
    assert report["shape_config"]["passes"] == 12
    names = {r["method"] for r in report["rows"]}
    assert names == {f"mgm image pipeline · {MASKGIT.name}", f"mgm image pipeline · {RECAP.name}"}
    assert {r["guidance"] for r in report["rows"]} == {1.0, 1.0 + report["shape_config"]["guidance_scale"]}
    assert all(r["valid_codes"] and r["nfe"] == 12 for r in report["rows"])
    assert table_path.read_text().startswith("Shipped pipeline image")
    with pytest.raises(SystemExit):
        decode_speed.main(["--pipeline", "image", "--shape", "tiny"])
