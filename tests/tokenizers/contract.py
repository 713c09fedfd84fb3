"""The behaviour behind ``mgm.tokenizers.Tokenizer``, checked on a real instance.

``Tokenizer`` is a ``runtime_checkable`` Protocol, so ``isinstance(tok, Tokenizer)`` only checks
that the attribute names exist. ``check_tokenizer_contract`` also runs them: the spec and downsample
describe the codes ``encode`` returns, and ``decode`` gives back inputs of the same shape that
depend on the codes.
"""

from __future__ import annotations

import torch

from mgm.tokenizers import Tokenizer
from mgm.tokens import TokenSpec


def check_tokenizer_contract(tok, x: torch.Tensor, extent: tuple[int, ...]) -> torch.Tensor:
    """Check ``tok`` on inputs ``x`` (a batch of at least 2 distinct items) whose tokenised axes have
    sizes ``extent`` (image: (H, W); audio: (samples,); motion: (frames,)). Returns the codes."""
    assert isinstance(tok, Tokenizer)
    assert isinstance(tok.spec, TokenSpec) and isinstance(tok.downsample, int) and tok.downsample >= 1
    assert tuple(size // tok.downsample for size in extent) == tok.spec.shape, "downsample: input units per token"
    codes = tok.encode(x)
    assert codes.dtype == torch.long and codes.shape == (len(x), tok.spec.num_codebooks, tok.spec.num_positions)
    tok.spec.check_codes(codes)
    assert torch.equal(tok.encode(x), codes), "encode is deterministic"
    decoded = tok.decode(codes)
    assert decoded.shape == x.shape and decoded.dtype == x.dtype
    assert not torch.equal(codes[0], codes[1]), "distinct inputs should get distinct codes"
    assert not torch.equal(decoded[0], decoded[1]), "decode depends on the codes"
    torch.testing.assert_close(tok.decode(codes[:1]), decoded[:1], msg="each item decodes on its own")
    return codes
