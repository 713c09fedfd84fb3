import pytest
import torch

from mgm.models import Condition
from mgm.models.ar_transformer import ARTransformer
from mgm.models.cache import KVCache


@pytest.fixture
def ar_model() -> ARTransformer:
    torch.manual_seed(0)
    return ARTransformer(vocab_size=7, max_length=12, dim=32, depth=2, num_heads=2, num_classes=3).eval()


def test_logits_shape_and_causality(ar_model):
    tokens = torch.randint(7, (2, 5))
    cond = Condition(labels=torch.tensor([0, 2]))
    logits = ar_model(tokens, cond)
    assert logits.shape == (2, 6, 7)
    changed = tokens.clone()
    changed[:, 3] = (changed[:, 3] + 1) % 7
    other = ar_model(changed, cond)
    torch.testing.assert_close(logits[:, :4], other[:, :4])  # token 3 only affects later positions
    assert not torch.allclose(logits[:, 4:], other[:, 4:])
    assert ar_model(tokens[:, :0], cond).shape == (2, 1, 7)


def test_cache_in_chunks_equals_one_pass_and_truncate_rolls_back(ar_model):
    tokens = torch.randint(7, (2, 9))
    cond = Condition(labels=torch.tensor([1, 0]))
    full = ar_model(tokens, cond)
    cache = KVCache()
    parts = [ar_model(tokens[:, :3], cond, cache=cache)]
    parts.append(ar_model(tokens[:, 3:4], cond, cache=cache)[:, 1:])
    parts.append(ar_model(tokens[:, 4:9], cond, cache=cache)[:, 1:])
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 9
    cache.truncate(4)  # roll back and feed other tokens: as if the rejected ones were never there
    other = tokens.clone()
    other[:, 4:] = (other[:, 4:] + 3) % 7
    torch.testing.assert_close(ar_model(other[:, 4:], cond, cache=cache), ar_model(other, cond)[:, 4:], atol=1e-5,
                               rtol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="length=20"):
        cache.truncate(20)


def test_save_load_and_bad_input(ar_model, tmp_path):
    ar_model.save_pretrained(tmp_path / "ar")
    loaded = ARTransformer.from_pretrained(tmp_path / "ar")
    tokens = torch.randint(7, (1, 4))
    torch.testing.assert_close(loaded(tokens), ar_model(tokens))
    with pytest.raises(ValueError, match="max_length=12"):
        ar_model(torch.zeros(1, 13, dtype=torch.long))
