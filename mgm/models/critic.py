"""A token critic (Lezama et al., Token-Critic, 2022) as a head on a masked transformer.

The critic reads the transformer's final hidden states of a full canvas (no masks, or a few) and
says, for every token, how likely it is that the model sampled it rather than it being given
(a data token). Trained with the transformer frozen (``mgm.training.critic``), it is the score
``critic_decode`` uses to choose which tokens to mask again.

Legend: B batch, K codebooks, N positions, D the transformer's width.
"""

from __future__ import annotations

import torch
from torch import nn

from mgm.checks import check_int
from mgm.io import PretrainedMixin
from mgm.models.conditioning import Condition
from mgm.models.layers import Block, init_weights
from mgm.models.protocols import ModelWrapper


class TokenCritic(PretrainedMixin, nn.Module):
    """hidden [B, N, D] -> logits [B, K, N] that each token was sampled (not given).

    ``depth`` self-attention blocks over the hidden states (a token is judged against its
    neighbours), then one linear output per codebook.
    """

    def __init__(self, dim: int, num_codebooks: int, depth: int = 1, num_heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        for name, value in (("dim", dim), ("num_codebooks", num_codebooks), ("num_heads", num_heads)):
            check_int(value, name)
        check_int(depth, "depth", minimum=0)
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads}: expected a divisor of dim={dim}")
        self.config = {"dim": dim, "num_codebooks": num_codebooks, "depth": depth, "num_heads": num_heads,
                       "mlp_ratio": mlp_ratio}  # fmt: skip
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, num_codebooks)
        self.apply(init_weights)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = hidden
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x)).transpose(1, 2)  # (B, K, N)


class CriticModel(ModelWrapper):
    """A masked model with a token critic: calls go to the model (a ``MaskedTransformer`` or
    anything with ``hidden(codes, cond) -> [B, N, D]``); ``critic_scores(codes, cond)`` is one more
    pass of the model, returning the critic's logits [B, K, N] (higher = more likely sampled)."""

    def __init__(self, model, critic: TokenCritic):
        super().__init__(model)
        self.critic = critic

    def critic_scores(self, codes: torch.Tensor, cond: Condition | None = None) -> torch.Tensor:
        inner = self.unwrapped()
        return self.critic(inner.hidden(codes, cond)).float()


def check_critic_fits(critic: TokenCritic, model) -> None:
    """The critic must read the model's width and score its codebooks."""
    dim, k = model.config["dim"], model.spec.num_codebooks
    if critic.config["dim"] != dim or critic.config["num_codebooks"] != k:
        raise ValueError(
            f"critic: width {critic.config['dim']} and {critic.config['num_codebooks']} codebooks do not fit the "
            f"transformer's width {dim} and {k} codebooks"
        )
