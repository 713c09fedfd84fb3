"""Networks: they map tokens (and a condition) to logits and never run a decoding loop."""

from mgm.models.conditioning import Condition
from mgm.models.masked_transformer import MaskedTransformer

__all__ = ["Condition", "MaskedTransformer"]
