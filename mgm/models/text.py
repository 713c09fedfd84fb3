"""Caption encoders for text-conditioned models: captions -> token embeddings for cross-attention
(``Condition(context=..., context_mask=...)``) and a pooled embedding.

- ``WordTextEncoder``: dependency-free, trained together with the model (a word vocabulary built
  from the training captions, embeddings and a small transformer encoder). The default for the
  embedded data, where no pretrained text model can be fetched.
- ``HFTextEncoder``: any Hugging Face text model through ``transformers`` (CLIP's text tower as
  MMM uses, a sentence-transformers model, ...), frozen, imported only when asked for.

Both return a ``TextEncoding``: tokens [B, L, D], mask [B, L] (True = a real token), pooled [B, D].
"""

from __future__ import annotations

import os
import re
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from mgm.io import PretrainedMixin
from mgm.models.conditioning import Condition
from mgm.models.layers import Block

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass
class TextEncoding:
    tokens: torch.Tensor  # [B, L, D]
    mask: torch.Tensor  # [B, L], True = a real token
    pooled: torch.Tensor  # [B, D]

    def condition(self) -> Condition:
        return Condition(context=self.tokens, context_mask=self.mask)


def check_captions(texts, name: str = "texts") -> list[str]:
    """A list of non-empty captions (a single string is one caption)."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts) if isinstance(texts, Iterable) else texts
    if not isinstance(texts, list) or not texts:
        raise ValueError(f"{name}: expected one caption or a non-empty list of captions, got {texts!r}")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name}[{i}]={text!r}: expected a non-empty caption")
    return texts


def mean_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """tokens [B, L, D], mask [B, L] -> each sequence's mean over its real tokens [B, D] (0 if none)."""
    weights = mask.to(tokens.dtype)[..., None]
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1)


class WordTextEncoder(PretrainedMixin, nn.Module):
    """Lower-cased words -> embeddings + positions -> ``depth`` pre-norm transformer blocks.

    Words become ids by a vocabulary or by hashing:
    - ``vocab``: the words it knows (index 0 is padding, 1 unknown; build it with ``build_vocab``);
    - ``vocab=None``: each word's id is 2 + crc32(word) mod ``num_buckets``, so a recipe needs no
      vocabulary up front (at a few hundred words in 4096 buckets, collisions are rare).
    Captions longer than ``max_words`` are cut. Saved like every mgm module (JSON config, which
    holds the vocabulary, + safetensors).
    """

    def __init__(
        self,
        vocab: list[str] | None = None,
        dim: int = 128,
        depth: int = 2,
        num_heads: int = 4,
        max_words: int = 32,
        num_buckets: int = 4096,
    ):
        super().__init__()
        if vocab is not None and list(vocab[:2]) != [PAD, UNK]:
            raise ValueError(f"vocab: expected {PAD!r} and {UNK!r} first (use WordTextEncoder.build_vocab)")
        self.config = {
            "vocab": None if vocab is None else list(vocab), "dim": dim, "depth": depth, "num_heads": num_heads,
            "max_words": max_words, "num_buckets": num_buckets,
        }  # fmt: skip
        self.index = None if vocab is None else {word: i for i, word in enumerate(vocab)}
        self.max_words, self.dim, self.num_buckets = max_words, dim, num_buckets
        self.embed = nn.Embedding(2 + num_buckets if vocab is None else len(vocab), dim, padding_idx=0)
        self.position = nn.Parameter(torch.randn(max_words, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    @staticmethod
    def words(text: str) -> list[str]:
        return _WORD.findall(text.lower())

    @classmethod
    def build_vocab(cls, captions: Iterable[str], min_count: int = 1) -> list[str]:
        """[PAD, UNK] + the words seen at least ``min_count`` times, most frequent first."""
        counts = Counter(word for caption in captions for word in cls.words(caption))
        return [PAD, UNK] + sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))

    def tokenize(self, texts) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (ids LongTensor[B, L], mask BoolTensor[B, L]); L = the longest caption's words."""
        texts = check_captions(texts)
        rows = [[self._id(w) for w in self.words(t)][: self.max_words] or [1] for t in texts]
        length = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), length, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids, ids != 0

    def _id(self, word: str) -> int:
        if self.index is None:
            return 2 + zlib.crc32(word.encode()) % self.num_buckets
        return self.index.get(word, 1)

    def forward(self, texts) -> TextEncoding:
        ids, mask = self.tokenize(texts)
        device = self.position.device
        ids, mask = ids.to(device), mask.to(device)
        x = self.embed(ids) + self.position[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, key_mask=mask)
        x = self.norm(x)
        return TextEncoding(tokens=x, mask=mask, pooled=mean_pool(x, mask))


class HFTextEncoder(nn.Module):
    """A frozen Hugging Face text model + its tokenizer as a caption encoder.

    ``pooled``: the model's ``pooler_output`` when it has one (CLIP: the end-of-text token after
    the final norm), else the mean of the real tokens (sentence-transformers' default pooling).
    """

    def __init__(self, model: nn.Module, tokenizer, max_length: int = 77, name: str | None = None):
        super().__init__()
        self.model, self.tokenizer, self.max_length, self.name = model.eval(), tokenizer, max_length, name
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dim = int(model.config.hidden_size)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, max_length: int = 77) -> HFTextEncoder:
        """A hub id or a local folder (a CLIP checkpoint loads its text tower only)."""
        try:
            from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPTextModel
        except ImportError as e:
            raise ImportError("HFTextEncoder needs transformers: pip install 'mgm[text]'") from e
        config = AutoConfig.from_pretrained(name_or_path)
        model_class = CLIPTextModel if config.model_type in ("clip", "clip_text_model") else AutoModel
        model = model_class.from_pretrained(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        return cls(model, tokenizer, max_length, name=str(name_or_path))

    def train(self, mode: bool = True) -> HFTextEncoder:
        super().train(mode)
        self.model.eval()  # frozen: no dropout either
        return self

    @torch.no_grad()
    def forward(self, texts) -> TextEncoding:
        texts = check_captions(texts)
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        device = next(self.model.parameters()).device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device).bool()
        out = self.model(input_ids=ids, attention_mask=mask.long())
        tokens = out.last_hidden_state
        pooled = getattr(out, "pooler_output", None)
        return TextEncoding(tokens=tokens, mask=mask, pooled=pooled if pooled is not None else mean_pool(tokens, mask))
