"""Networks: they map tokens (and a condition) to logits and never run a decoding loop."""

from mgm.models.ar_transformer import ARCache, ARTransformer
from mgm.models.conditioning import Condition
from mgm.models.critic import CriticModel, TokenCritic
from mgm.models.masked_transformer import MaskedTransformer
from mgm.models.text import HFTextEncoder, TextEncoding, WordTextEncoder

__all__ = [
    "ARCache",
    "ARTransformer",
    "Condition",
    "CriticModel",
    "HFTextEncoder",
    "MaskedTransformer",
    "TextEncoding",
    "TokenCritic",
    "WordTextEncoder",
]
