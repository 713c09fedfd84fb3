"""Saves are whole or nothing: a folder is built beside its target and swapped in, its manifest
refuses a mix of two saves, and real SIGKILLs at random moments leave the old or the new folder."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from mgm.io import MANIFEST, atomic_folder, weights_fingerprint
from mgm.models import MaskedTransformer

CHILD = textwrap.dedent("""
    import sys
    kind, target, sources = sys.argv[1], sys.argv[2], sys.argv[3:]
    if kind == "model":
        from mgm.models import MaskedTransformer as loader
    else:
        from mgm.pipelines import ImagePipeline as loader
    saved = [loader.from_pretrained(s) for s in sources]
    print("ready", flush=True)
    i = 0
    while True:  # alternate the two versions until killed
        saved[i % 2].save_pretrained(target, overwrite=True)
        i += 1
""")


def _model(seed: int) -> MaskedTransformer:
    torch.manual_seed(seed)
    return MaskedTransformer([64], [8, 8], dim=64, depth=2, num_heads=2, num_classes=3).eval()


def _hidden_siblings(folder: Path) -> list[Path]:
    return [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


def test_an_error_inside_a_save_leaves_the_old_folder_and_no_debris(tmp_path):
    folder = _model(0).save_pretrained(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_folder(folder, overwrite=True) as built:
            (built / "config.json").write_text("{}")
            raise RuntimeError("disk full")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert _hidden_siblings(folder) == []
    with pytest.raises(FileExistsError, match="overwrite=True"):
        _model(1).save_pretrained(folder)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        _model(1).save_pretrained(tmp_path / "file", overwrite=True)


def test_a_folder_mixing_two_saves_is_refused(tmp_path):
    a, b = _model(0).save_pretrained(tmp_path / "a"), _model(1).save_pretrained(tmp_path / "b")
    assert (a / MANIFEST).is_file()
    (a / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes())  # one's config, other's weights
    with pytest.raises(ValueError, match="model.safetensors is not the file this folder was saved with"):
        MaskedTransformer.from_pretrained(a)
    (b / "config.json").unlink()
    with pytest.raises(ValueError, match="config.json is missing"):
        MaskedTransformer.from_pretrained(b)


def test_a_pipeline_folder_is_one_save(tiny_image_pipeline, tmp_path):
    folder = tiny_image_pipeline.save_pretrained(tmp_path / "p")
    for part in ("", "tokenizer", "transformer"):
        assert (folder / part / MANIFEST).is_file()
    other = tmp_path / "q"
    tiny_image_pipeline.transformer.save_pretrained(other)
    torch.nn.init.zeros_(tiny_image_pipeline.transformer.head_weight)
    tiny_image_pipeline.transformer.save_pretrained(other, overwrite=True)
    (folder / "transformer" / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    from mgm.pipelines import ImagePipeline

    with pytest.raises(ValueError, match="not the file this folder was saved with"):
        ImagePipeline.from_pretrained(folder)


def test_debris_of_a_killed_save_is_cleared_by_the_next(tmp_path):
    debris = tmp_path / ".m.abc123.partial"
    debris.mkdir()
    (debris / "model.safetensors").write_bytes(b"half")
    _model(0).save_pretrained(tmp_path / "m")
    assert not debris.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def _kill_while_saving(kind: str, target: Path, sources: list[Path], kills: int, seed: int) -> dict:
    """SIGKILL a process saving ``sources`` in turn to ``target``, ``kills`` times at random
    moments; after each kill the folder must load as exactly one of them (or, before the first
    save finished, not exist). Returns the counts of what was found."""
    from mgm.pipelines import ImagePipeline

    loader = MaskedTransformer if kind == "model" else ImagePipeline
    fingerprint = weights_fingerprint if kind == "model" else (lambda pipe: weights_fingerprint(pipe.transformer))
    expected = {fingerprint(loader.from_pretrained(s)): i for i, s in enumerate(sources)}
    rng = random.Random(seed)
    found = {"absent": 0, 0: 0, 1: 0, "killed mid-save": 0}
    script = target.parent / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, str(script), kind, str(target), *map(str, sources)],
                                 stdout=subprocess.PIPE, env=env)  # fmt: skip
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait()
        found["killed mid-save"] += bool(_hidden_siblings(target))  # a half-built sibling was left
        if not target.exists():
            found["absent"] += 1
            continue
        loaded = loader.from_pretrained(target)  # refuses a mix; here it must be whole
        found[expected[fingerprint(loaded)]] += 1
    # What a killed save left beside the folder is gone after the next save.
    loader.from_pretrained(sources[0]).save_pretrained(target, overwrite=True)
    assert _hidden_siblings(target) == []
    print(f"{kind}: {kills} kills -> {found}")  # shown with -s
    return found


def test_sigkill_during_saves_leaves_the_old_or_the_new_model(tmp_path):
    sources = [_model(0).save_pretrained(tmp_path / "a"), _model(1).save_pretrained(tmp_path / "b")]
    found = _kill_while_saving("model", tmp_path / "target", sources, kills=6, seed=0)
    assert found["absent"] + found[0] + found[1] == 6


@pytest.mark.slow
def test_sigkill_200_times_models_and_pipelines(tmp_path, tiny_image_pipeline):
    sources = [_model(0).save_pretrained(tmp_path / "a"), _model(1).save_pretrained(tmp_path / "b")]
    found = _kill_while_saving("model", tmp_path / "target", sources, kills=200, seed=1)
    assert found[0] > 0 and found[1] > 0, found  # the kills landed in both versions' saves
    pipes = [tiny_image_pipeline.save_pretrained(tmp_path / "p0")]
    torch.nn.init.zeros_(tiny_image_pipeline.transformer.head_weight)
    pipes.append(tiny_image_pipeline.save_pretrained(tmp_path / "p1"))
    found = _kill_while_saving("pipeline", tmp_path / "ptarget", pipes, kills=60, seed=2)
    assert found[0] > 0 and found[1] > 0, found
