import torch

from mgm.data.pretokenize import pretokenize
from mgm.data.shapes import ShapesDataset


def test_second_run_reuses_the_codes_file(tiny_vq, tmp_path, monkeypatch):
    dataset = ShapesDataset(40, image_size=16, seed=0)
    path = tmp_path / "codes.safetensors"
    codes, labels, spec = pretokenize(tiny_vq, dataset, path, source="shapes-40")
    assert codes.shape == (40, 1, 64) and torch.equal(labels, dataset.labels) and spec == tiny_vq.spec

    calls = []
    original = tiny_vq.encode
    monkeypatch.setattr(tiny_vq, "encode", lambda x: calls.append(1) or original(x))
    again, _, _ = pretokenize(tiny_vq, dataset, path, source="shapes-40")
    assert calls == [] and torch.equal(again.long(), codes.long())
    # Another source (or other tokenizer weights) re-encodes.
    pretokenize(tiny_vq, dataset, path, source="shapes-40-other")
    assert calls
