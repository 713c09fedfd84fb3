"""Networks: they map tokens (and a condition) to logits and never run a decoding loop."""

from mgm.models.ar_transformer import ARTransformer
from mgm.models.cache import KVCache
from mgm.models.conditioning import Condition
from mgm.models.critic import CriticModel, TokenCritic
from mgm.models.flex_ar import FlexARTransformer
from mgm.models.masked_transformer import MaskedTransformer
from mgm.models.text import HFTextEncoder, TextEncoding, WordTextEncoder
from mgm.models.transformers_ar import TransformersAR

__all__ = [
    "ARTransformer",
    "Condition",
    "CriticModel",
    "FlexARTransformer",
    "HFTextEncoder",
    "KVCache",
    "MaskedTransformer",
    "TextEncoding",
    "TokenCritic",
    "TransformersAR",
    "WordTextEncoder",
]
