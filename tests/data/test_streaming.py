"""Webdataset code shards (mgm.data.streaming) and pre-tokenization across ranks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("webdataset")

from mgm.data.pretokenize import pretokenize  # noqa: E402
from mgm.data.shapes import ShapesDataset  # noqa: E402
from mgm.data.streaming import StreamingCodes, pretokenize_to_shards, read_index  # noqa: E402
from mgm.training import StreamingCodesDataModule  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def rows(items) -> list[tuple]:
    return sorted(tuple(item["codes"].flatten().tolist()) + (int(item["labels"]),) for item in items)


@pytest.fixture
def shards(tiny_vq, tmp_path):
    dataset = ShapesDataset(50, image_size=16, seed=0)
    index = pretokenize_to_shards(tiny_vq, dataset, tmp_path / "shards", "shapes-50", batch_size=8, shard_size=5)
    codes, labels, _ = pretokenize(tiny_vq, dataset, tmp_path / "codes.safetensors", "shapes-50")
    expected = sorted(tuple(c.flatten().tolist()) + (int(lab),) for c, lab in zip(codes.long(), labels))
    return tmp_path / "shards", index, expected


def test_shards_hold_the_codes_of_the_codes_file(shards, tiny_vq):
    folder, index, expected = shards
    assert index["items"] == 50 and [s["items"] for s in index["shards"]] == [5] * 10
    assert read_index(folder)["spec"] == tiny_vq.spec.to_dict()
    data = StreamingCodes(folder, rank=0, world_size=1, shuffle_buffer=10)
    assert data.spec == tiny_vq.spec and len(data) == 50
    assert rows(data) == expected


def test_ranks_stream_disjoint_shares_of_equal_size(shards):
    folder, _, expected = shards
    parts = [list(StreamingCodes(folder, rank=r, world_size=2, shuffle_buffer=10)) for r in range(2)]
    assert [len(p) for p in parts] == [25, 25]
    assert rows(parts[0] + parts[1]) == expected  # 5 shards of 5 each: every item once
    three = [list(StreamingCodes(folder, rank=r, world_size=3, shuffle_buffer=0)) for r in range(3)]
    assert [len(p) for p in three] == [16, 16, 16]  # 4, 3, 3 shards: the short ranks cycle their own
    distinct = [set(rows(p)) for p in three]
    assert [len(d) for d in distinct] == [16, 15, 15] and not (distinct[0] & distinct[1] or distinct[1] & distinct[2])


def test_epochs_reorder_and_a_resumed_epoch_continues_its_order(shards):
    folder, _, _ = shards
    data = StreamingCodes(folder, rank=0, world_size=1, seed=3, shuffle_buffer=10)
    first = [item["codes"] for item in data]
    data.skip = 17
    resumed = [item["codes"] for item in data]
    assert len(resumed) == 33 and all(torch.equal(a, b) for a, b in zip(first[17:], resumed))
    data.skip = 0
    data.set_epoch(1)
    again = [item["codes"] for item in data]
    assert rows([{"codes": c, "labels": torch.tensor(0)} for c in again]) == rows(
        [{"codes": c, "labels": torch.tensor(0)} for c in first]
    )
    assert not all(torch.equal(a, b) for a, b in zip(first, again))


def test_a_matching_index_is_reused(tiny_vq, shards, monkeypatch):
    folder, _, _ = shards
    calls = []
    monkeypatch.setattr(tiny_vq, "encode", lambda x: calls.append(1))
    pretokenize_to_shards(tiny_vq, ShapesDataset(50, image_size=16, seed=0), folder, "shapes-50")
    assert calls == []


def test_datamodule_batches_and_workers_cover_the_epoch(shards, tiny_vq):
    folder, _, expected = shards
    data = StreamingCodesDataModule(str(folder), batch_size=5, shuffle_buffer=8, num_workers=2)
    data.setup()
    assert data.spec == tiny_vq.spec and data.val_dataloader() == []
    batches = list(data.train_dataloader())
    assert all(b["codes"].shape == (5, 1, 64) and b["codes"].dtype == torch.long for b in batches)
    items = [{"codes": c, "labels": lab} for b in batches for c, lab in zip(b["codes"], b["labels"])]
    assert rows(items) == expected


def test_bad_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no index.json"):
        StreamingCodes(tmp_path)


def test_two_ranks_pretokenize_into_the_files_of_one(tiny_vq, tmp_path):
    """torchrun, 2 CPU processes on gloo: the merged codes file equals one process's, the shards hold
    every item once, and the ranks stream disjoint shares of equal size."""
    from mgm.data.motions import MotionsDataset
    from mgm.tokenizers.motion_vq import MotionVQ
    from mgm.training.motion_tokens import pretokenize_motions

    tiny_vq.save_pretrained(tmp_path / "vq")
    torch.manual_seed(0)
    motion_vq = MotionVQ(codebook_size=16, code_dim=8, width=16, depth=1).eval()
    motion_vq.save_pretrained(tmp_path / "motion_vq")
    out = tmp_path / "ranks"
    out.mkdir()
    script = ROOT / "tests/data/pretokenize_ranks.py"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(tmp_path / "vq"), str(tmp_path / "motion_vq"), str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's mgm, whatever the venv points at
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    dataset = ShapesDataset(50, image_size=16, seed=0)
    one, labels, _ = pretokenize(tiny_vq, dataset, tmp_path / "one.safetensors", "shapes-50")
    from mgm.data import load_codes

    merged, merged_labels, _ = load_codes(out / "codes.safetensors")
    assert torch.equal(merged.long(), one.long()) and torch.equal(merged_labels, labels)
    names = ["codes.safetensors", "motion_codes.safetensors", "rank0.json", "rank1.json", "shards"]
    assert sorted(p.name for p in out.iterdir()) == names
    clips = MotionsDataset(6, seed=1, mean=motion_vq.mean, std=motion_vq.std)
    single = pretokenize_motions(motion_vq, clips, tmp_path / "motion_one.safetensors", "motions7(6, 1)")
    merged = pretokenize_motions(motion_vq, clips, out / "motion_codes.safetensors", "motions7(6, 1)")  # reused
    assert all(torch.equal(a, b) for a, b in zip(merged[0], single[0])) and len(merged[0]) == 6
    assert merged[1] == single[1] and torch.equal(merged[2], single[2])
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world"] for r in reports] == [2, 2] and [len(r["streamed"]) for r in reports] == [25, 25]
    every = sorted(tuple(c.flatten().tolist()) for c in one.long())
    # The ranks wrote 24 + 26 items in shards of 6 (4 + 5 shards): together, each item once.
    assert read_index(out / "shards")["items"] == 50 and len(read_index(out / "shards")["shards"]) == 9
    whole = StreamingCodes(out / "shards", rank=0, world_size=1, shuffle_buffer=0)
    assert sorted(tuple(item["codes"].flatten().tolist()) for item in whole) == every
    # Streamed back on 2 ranks: 25 items each from disjoint shards (a short rank cycles its own).
    shares = [{tuple(c) for c in r["streamed"]} for r in reports]
    assert not shares[0] & shares[1] and shares[0] | shares[1] <= set(every)
