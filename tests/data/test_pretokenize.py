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


def test_codes_file_datamodule_serves_the_saved_codes(tmp_path):
    from mgm.data import save_codes
    from mgm.tokens import TokenSpec
    from mgm.training import CodesFileDataModule

    spec = TokenSpec((8,), (4, 4))
    codes = torch.randint(8, (20, 1, 16))
    save_codes(tmp_path / "c.safetensors", codes, spec, labels=torch.arange(20) % 3)
    data = CodesFileDataModule(str(tmp_path / "c.safetensors"), batch_size=4, val_fraction=0.2)
    data.setup()
    assert data.spec == spec and len(data.train_set) == 16 and len(data.val_set) == 4
    batch = next(iter(data.train_dataloader()))
    assert batch["codes"].shape == (4, 1, 16) and batch["codes"].dtype == torch.long and batch["labels"].shape == (4,)
