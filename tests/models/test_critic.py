"""TokenCritic: shapes, weights round trip, the checks, and a pipeline carrying one."""

from __future__ import annotations

import pytest
import torch

from mgm.decoding import critic_decode
from mgm.models import CriticModel, MaskedTransformer, TokenCritic


def test_scores_every_token_of_every_codebook(tiny_model):
    critic = TokenCritic(32, 2, depth=1, num_heads=2).eval()
    model = CriticModel(tiny_model, critic)
    codes = torch.stack([torch.randint(8, (3, 16)), torch.randint(6, (3, 16))], 1)
    scores = model.critic_scores(codes, None)
    assert scores.shape == (3, 2, 16) and scores.dtype == torch.float32 and torch.isfinite(scores).all()
    # The wrapper is still the model for every other call.
    assert torch.equal(model(codes, None), tiny_model(codes, None))


def test_round_trip_through_safetensors(tmp_path):
    torch.manual_seed(0)
    critic = TokenCritic(32, 2, depth=2, num_heads=4).eval()
    critic.save_pretrained(tmp_path / "critic")
    loaded = TokenCritic.from_pretrained(tmp_path / "critic").eval()
    assert loaded.config == critic.config
    hidden = torch.randn(2, 5, 32)
    assert torch.equal(loaded(hidden), critic(hidden))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_heads": 3}, "num_heads=3"), ({"depth": -1}, "depth"), ({"num_codebooks": 0}, "num_codebooks")],
)
def test_bad_sizes_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TokenCritic(**{"dim": 32, "num_codebooks": 1, **kwargs})


def test_critic_decode_without_a_critic_is_refused_before_any_call(tiny_model):
    calls = []

    def model(codes, cond):
        calls.append(1)
        return tiny_model(codes, cond)

    model.spec = tiny_model.spec
    with pytest.raises(ValueError, match="critic_scores"):
        critic_decode(model, tiny_model.spec, batch_size=2)
    assert not calls


def test_a_pipeline_saves_and_loads_its_critic(tiny_image_pipeline, tmp_path):
    pipe = tiny_image_pipeline
    torch.manual_seed(1)
    pipe.critic = TokenCritic(32, 1, num_heads=2)
    pipe.save_pretrained(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "critic" / "model.safetensors").exists()
    loaded = type(pipe).from_pretrained(tmp_path / "pipe")
    assert loaded.critic is not None
    for (name, a), (_, b) in zip(pipe.critic.state_dict().items(), loaded.critic.state_dict().items()):
        assert torch.equal(a, b), name
    out = loaded.generate_codes(2, labels=[0, 2], method="critic", num_steps=3, seed=0)
    assert not bool(loaded.spec.is_masked(out.codes).any())
    assert out.nfe == 2 * 3 - 1


def test_a_pipeline_refuses_a_critic_that_does_not_fit(tiny_image_pipeline):
    with pytest.raises(ValueError, match="width 16"):
        tiny_image_pipeline.critic = TokenCritic(16, 1, num_heads=2)
    with pytest.raises(ValueError, match="critic: expected"):
        tiny_image_pipeline.critic = MaskedTransformer([4], [2], dim=16, depth=1, num_heads=2)


def test_a_pipeline_without_a_critic_names_what_the_method_needs(tiny_image_pipeline):
    with pytest.raises(ValueError, match="critic_scores"):
        tiny_image_pipeline.generate_codes(2, method="critic")
