import pytest
import torch

from mgm.models import Condition, MaskedTransformer
from mgm.training import MaskedTokenTraining
from tests.conftest import quiet_trainer


def _batch(b=8):
    g = torch.Generator().manual_seed(0)
    codes = torch.stack([torch.randint(8, (b, 16), generator=g), torch.randint(6, (b, 16), generator=g)], 1)
    return {"codes": codes, "labels": torch.randint(3, (b,), generator=g)}


def test_loss_is_finite_with_mixed_codebooks_and_label_smoothing(tiny_model):
    system = MaskedTokenTraining(tiny_model.train(), label_smoothing=0.1)
    loss, accuracy = system.masked_loss(_batch(), train=True)
    assert torch.isfinite(loss) and 0 <= accuracy <= 1
    loss.backward()
    assert tiny_model.head_weight.grad is not None


class PeekingModel(torch.nn.Module):
    """Certain of every visible token (it sees the answer), uniform on masked ones."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def forward(self, codes, cond=None):
        self.inputs = codes
        visible = ~self.spec.is_masked(codes)
        one_hot = torch.nn.functional.one_hot(codes.clamp(max=7), self.spec.vocab_size).float()
        logits = 100.0 * one_hot * visible[..., None] + self.weight
        logits[:, 1, :, 6:] = float("-inf")  # codebook 1 has 6 entries
        return logits


def test_loss_is_mean_cross_entropy_over_masked_positions_only(tiny_model):
    model = PeekingModel(tiny_model.spec)
    system = MaskedTokenTraining(model)
    loss, _ = system.masked_loss(_batch(), train=False)
    masked = tiny_model.spec.is_masked(model.inputs)
    assert masked.any() and not masked.all()
    # Visible tokens would add ~0 loss each. On masked ones the cross-entropy is log 8 on
    # codebook 0 and log 6 on codebook 1, whatever the target, so the loss is their mean
    # weighted by how many positions of each were masked.
    counts = masked.sum((0, 2)).float()
    expected = (counts[0] * torch.log(torch.tensor(8.0)) + counts[1] * torch.log(torch.tensor(6.0))) / counts.sum()
    torch.testing.assert_close(loss, expected)


def test_example_weighting_averages_each_example_then_the_batch(tiny_model):
    model = PeekingModel(tiny_model.spec)
    torch.manual_seed(0)
    loss, _ = MaskedTokenTraining(model, loss_weighting="example").masked_loss(_batch(), train=False)
    masked = tiny_model.spec.is_masked(model.inputs)
    # Per example: its masked tokens' mean of log 8 (codebook 0) and log 6 (codebook 1).
    counts = masked.sum(2).float()  # (B, K)
    per_example = (
        counts[:, 0] * torch.log(torch.tensor(8.0)) + counts[:, 1] * torch.log(torch.tensor(6.0))
    ) / counts.sum(1)
    torch.testing.assert_close(loss, per_example.mean())
    with pytest.raises(ValueError, match="loss_weighting='batch'"):
        MaskedTokenTraining(model, loss_weighting="batch")


def test_condition_dropout_reaches_the_model(tiny_model, monkeypatch):
    drops = []
    original = tiny_model.forward

    def spy(codes, cond=None):
        drops.append(cond.dropped(codes.shape[0], codes.device))
        return original(codes, cond)

    monkeypatch.setattr(tiny_model, "forward", spy)
    system = MaskedTokenTraining(tiny_model, cond_drop_prob=0.5)
    torch.manual_seed(0)
    for _ in range(20):
        system.masked_loss(_batch(64), train=True)
    rate = torch.cat(drops).float().mean().item()
    assert 0.45 < rate < 0.55  # 1280 Bernoulli(0.5) draws: sd 0.014
    drops.clear()
    system.masked_loss(_batch(64), train=False)
    assert not drops[0].any(), "no dropout at validation"


def test_bad_hyperparameters():
    model = MaskedTransformer([4], [4], dim=8, depth=1, num_heads=1)
    with pytest.raises(ValueError, match="schedule='nope'"):
        MaskedTokenTraining(model, schedule="nope")
    with pytest.raises(ValueError, match="cond_drop_prob=1.5"):
        MaskedTokenTraining(model, cond_drop_prob=1.5)


def test_lightning_checkpoint_loads_with_weights_only(tmp_path):
    from mgm.training import MarkovCodesDataModule

    model = MaskedTransformer([8], [6], dim=16, depth=1, num_heads=2, num_classes=2)
    system = MaskedTokenTraining(model, warmup_steps=2)
    data = MarkovCodesDataModule(vocab_size=8, length=6, num_classes=2, num_sequences=64, batch_size=16)
    trainer = quiet_trainer(3, default_root_dir=tmp_path)
    trainer.fit(system, data)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    restored = MaskedTransformer([8], [6], dim=16, depth=1, num_heads=2, num_classes=2)
    MaskedTokenTraining(restored).load_state_dict(checkpoint["state_dict"])
    codes = torch.randint(8, (2, 1, 6))
    cond = Condition(labels=torch.tensor([0, 1]))
    assert torch.equal(restored.eval()(codes, cond), model.eval()(codes, cond))


def test_warm_start_from_an_ar_model(tmp_path):
    from mgm.models.ar_transformer import ARTransformer

    torch.manual_seed(0)
    ar = ARTransformer(vocab_size=16, max_length=12, dim=32, depth=2, num_heads=2, num_classes=3)
    for param in ar.parameters():  # trained-looking weights, so a copy cannot pass by accident
        param.data.normal_()
    ar.save_pretrained(tmp_path / "ar")
    model = MaskedTransformer([16], (3, 4), dim=32, depth=2, num_heads=2, num_classes=3)
    mask_row = model.token_emb.weight[16].clone()
    MaskedTokenTraining(model, init_from=str(tmp_path / "ar"))
    for name, value in ar.blocks.state_dict().items():
        assert torch.equal(model.blocks.state_dict()[name], value), name
    assert torch.equal(model.token_emb.weight[:16], ar.token_emb.weight)
    assert torch.equal(model.token_emb.weight[16], mask_row)  # the mask token is the masked model's own
    assert torch.equal(model.head_weight[0], ar.head.weight)
    assert torch.equal(model.label_emb.weight, ar.label_emb.weight)
    # Positions: the additive fit of the AR's raster positions keeps their row and column means.
    grid = ar.pos_emb[:12].reshape(3, 4, -1)
    fitted = model.positions().reshape(3, 4, -1)
    torch.testing.assert_close(fitted.mean(1), grid.mean(1))
    torch.testing.assert_close(fitted.mean(0), grid.mean(0))

    with pytest.raises(ValueError, match="dim: masked 64 vs AR 32"):
        MaskedTokenTraining(MaskedTransformer([16], (3, 4), dim=64, depth=2, num_heads=2, num_classes=3),
                            init_from=str(tmp_path / "ar"))  # fmt: skip
    with pytest.raises(ValueError, match="one codebook"):
        MaskedTokenTraining(MaskedTransformer([16, 16], (3, 4), dim=32, depth=2, num_heads=2, num_classes=3),
                            init_from=str(tmp_path / "ar"))  # fmt: skip
    with pytest.raises(ValueError, match="max_length 12"):
        MaskedTokenTraining(MaskedTransformer([16], (4, 4), dim=32, depth=2, num_heads=2, num_classes=3),
                            init_from=str(tmp_path / "ar"))  # fmt: skip


def test_the_loss_needs_no_data_dependent_shape(tiny_model):
    """No boolean indexing, nonzero or masked_select: each would be a host sync per step on a GPU."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class DataDependentOps(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.found = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func)
            flat = [a for arg in args for a in (arg if isinstance(arg, (list, tuple)) else [arg])]
            bool_index = "index" in name and any(isinstance(a, torch.Tensor) and a.dtype == torch.bool for a in flat)
            if "nonzero" in name or "masked_select" in name or bool_index:
                self.found.append(name)
            return func(*args, **(kwargs or {}))

    for weighting in ("token", "example"):
        system = MaskedTokenTraining(tiny_model.train(), loss_weighting=weighting, label_smoothing=0.1)
        with DataDependentOps() as ops:
            loss, _ = system.masked_loss(_batch(), train=True)
            loss.backward()
        assert not ops.found, ops.found
