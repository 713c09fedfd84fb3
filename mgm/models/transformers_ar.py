"""transformers' image-token AR models (Janus, Chameleon, Emu3) as mgm AR models.

``TransformersAR(hf_model)`` answers the AR contract of ``mgm.models.ar_transformer`` (``model(tokens,
cond, cache=None) -> logits [B, L + 1, V]``, the ``KVCache`` forms, per-row lengths) so that
``ar_decode`` and ``sjd_decode`` drive it unchanged:

- tokens are image-codebook indices 0..V-1: Janus embeds them with its generation embeddings and
  predicts them with its generation head; Chameleon and Emu3 keep image tokens in the text
  vocabulary, so index i is the BPE id ``image_token_ids[i]`` on the way in and the logits are the
  language-model head's rows for those ids (restricted to image tokens) on the way out;
- the condition is a prompt: ``prompt(ids, attention_mask)`` makes a ``Condition`` of its input
  embeddings (context [B, S, D], context_mask [B, S]); null rows (``drop``, classifier-free
  guidance, or no condition) use ``null_prompt``. Prompts are left-padded to one length and
  positions count real tokens only, as transformers' batched generation does;
- the cache holds transformers' own key/value tensors ([B, H, S, E] per layer, the layout of
  ``DynamicCache``): each call wraps them in a ``DynamicCache`` (the model appends the new
  tokens' keys/values), rolling back is ``KVCache.truncate`` (the equivalent of
  ``DynamicCache.crop(-n)``) or, for per-row lengths, the attention mask: slots past a row's
  length are masked out and overwritten by its next call.

Row separators (Emu3's end-of-line token after every row, Lumina-mGPT's new-line token): with
``row_separator`` the adapter writes one after every ``row_length`` tokens into the model's sequence
(its own slot, key/value and position), so decoders still see the H x W grid in raster order; a
token's distribution then comes from the separator's slot at the start of a row. Rolling a plain
cache back with ``KVCache.truncate`` counts slots (``slots(n)`` for n tokens); per-row lengths
count tokens.

Legend: B batch, L tokens, P prompt slots (padded), S cached slots, M new tokens, D width, V image vocabulary.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from mgm.models.cache import KVCache
from mgm.models.conditioning import Condition

FAMILIES = ("janus", "chameleon", "emu3")


def _family(hf_model) -> str:
    name = type(hf_model).__name__.lower()
    for family in FAMILIES:
        if name.startswith(family):
            return family
    raise ValueError(
        f"hf_model: expected a transformers JanusForConditionalGeneration, ChameleonForConditionalGeneration "
        f"or Emu3ForConditionalGeneration, got {type(hf_model).__name__}"
    )


class TransformersAR(nn.Module):
    """An image-token AR model of transformers behind mgm's AR contract (module doc).

    Args:
        hf_model: a JanusForConditionalGeneration, ChameleonForConditionalGeneration or
            Emu3ForConditionalGeneration (weights from ``from_pretrained`` or a config).
        null_prompt: token ids [S0] of the unconditional prompt (guidance, no condition); default
            the model's BOS token (and Janus's begin-of-image token after it).
        max_length: image tokens per sample; default Janus's ``num_image_tokens`` (else unset).
        grid: (h, w) of the token grid, for ``decode_pixels`` of Emu3 (and its row separator); default square.
        row_separator, row_length: a token id the model's image format puts after every
            ``row_length`` image tokens (Emu3's end-of-line, the default for Emu3 given ``grid``;
            Lumina-mGPT's new-line token); the adapter inserts it, so mgm's tokens stay the grid.
    """

    row_cache = True  # it honours per-row cache lengths (mgm.models.ar_transformer's module doc)

    def __init__(self, hf_model, *, null_prompt=None, max_length: int | None = None, grid=None,
                 row_separator: int | None = None, row_length: int | None = None):  # fmt: skip
        super().__init__()
        self.family = _family(hf_model)
        self.hf = hf_model
        if self.family == "janus":
            self.body = hf_model.model.language_model
            self.image_token_ids = None
            self.vocab_size = hf_model.config.vq_config.num_embeddings
            max_length = hf_model.config.vision_config.num_image_tokens if max_length is None else max_length
        else:
            self.body = hf_model.model.text_model if self.family == "emu3" else hf_model.model
            mapping = hf_model.model.vocabulary_mapping.img2bpe
            if not mapping:
                raise ValueError("hf_model: its config has no image tokens in vocabulary_map")
            ids = [mapping[i] for i in range(len(mapping))]
            self.register_buffer("image_token_ids", torch.tensor(ids, dtype=torch.long), persistent=False)
            self.vocab_size = len(ids)
        self.max_length = max_length
        self.grid = grid
        if row_separator is None and self.family == "emu3" and grid is not None:
            row_separator, row_length = hf_model.model.vocabulary_mapping.eol_token_id, grid[1]
        if row_separator is not None:
            if not isinstance(row_length, int) or row_length < 1:
                raise ValueError(f"row_length={row_length!r}: a row separator needs the tokens per row")
            if max_length is None:
                raise ValueError("max_length=None: a row separator needs the image's token count")
            row_separator = torch.tensor(row_separator, dtype=torch.long)
        self.register_buffer("row_separator", row_separator, persistent=False)
        self.row_length = row_length
        self.register_buffer("null_prompt", self._null_prompt(null_prompt), persistent=False)
        parameters = inspect.signature(self.body.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    def _null_prompt(self, null_prompt) -> torch.Tensor:
        if null_prompt is None:
            generation = self.hf.generation_config
            bos = generation.bos_token_id if generation.bos_token_id is not None else self.hf.config.bos_token_id
            ids = [bos]
            if self.family == "janus":
                extra = getattr(generation, "generation_kwargs", None) or {}
                ids.append(extra.get("boi_token_id", getattr(self.hf.config, "boi_token_id", None)))
            null_prompt = [i for i in ids if i is not None]
        null_prompt = torch.as_tensor(null_prompt, dtype=torch.long).flatten()
        if null_prompt.numel() == 0:
            raise ValueError("null_prompt: expected at least one token id (e.g. the BOS token)")
        return null_prompt

    # -- the two ends: prompts and image tokens in, image logits and pixels out

    @torch.no_grad()
    def prompt(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Condition:
        """Prompt token ids [B, S] (the processor's, image-start tokens included; padding marked by
        ``attention_mask``) -> the Condition ``cond=`` takes."""
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError("ids: expected a LongTensor [B, S] of prompt token ids")
        mask = torch.ones_like(ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask: expected shape {tuple(ids.shape)}, got {tuple(mask.shape)}")
        device = self.null_prompt.device
        embeds = self.hf.get_input_embeddings()(ids.to(device))
        return Condition(context=embeds, context_mask=mask.to(device))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Image tokens [B, L] in 0..V-1 -> input embeddings [B, L, D]."""
        if self.family == "janus":
            return self.hf.prepare_embeddings_for_image_generation(tokens)
        return self.hf.get_input_embeddings()(self.image_token_ids[tokens])

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final hidden states [..., D] -> image-token logits [..., V] (float32)."""
        if self.family == "janus":
            return self.hf.model.generation_head(hidden).float()
        lm_head = self.hf.get_output_embeddings()
        weight = lm_head.weight.index_select(0, self.image_token_ids)
        bias = None if lm_head.bias is None else lm_head.bias.index_select(0, self.image_token_ids)
        return F.linear(hidden, weight, bias).float()

    @torch.no_grad()
    def decode_pixels(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, 1, L] (a DecodeResult's) -> images [B, 3, H, W] in [0, 1] through the model's VQ decoder."""
        tokens = codes[:, 0] if codes.dim() == 3 else codes
        if self.family == "janus":
            images = self.hf.decode_image_tokens(tokens).permute(0, 3, 1, 2)
        elif self.family == "emu3":
            h, w = self.grid or (int(tokens.shape[1] ** 0.5),) * 2
            images = self.hf.model.vqmodel.decode(tokens.reshape(-1, h, w))
        else:
            raise ValueError("decode_pixels: transformers' Chameleon has no VQ decoder (its VQ-VAE only encodes)")
        return ((images.float() + 1) / 2).clamp(0, 1)

    # -- the AR contract

    def _prefix(self, cond: Condition | None, batch_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """The prompt of every row, left-padded -> (embeds [B, P, D], mask BoolTensor[B, P])."""
        null = self.hf.get_input_embeddings()(self.null_prompt.to(device))  # (S0, D)
        if cond is None or cond.context is None:
            if cond is not None and cond.labels is not None:
                raise ValueError("cond.labels given, but a transformers model is conditioned on a prompt (prompt())")
            return null[None].expand(batch_size, -1, -1), torch.ones(batch_size, len(null), dtype=torch.bool,
                                                                     device=device)  # fmt: skip
        embeds, mask = cond.context.to(device, null.dtype), cond.context_mask
        mask = torch.ones(embeds.shape[:2], dtype=torch.bool, device=device) if mask is None else mask.to(device)
        # Real tokens last, in order (a right-padded prompt too): the last slot predicts the first image token.
        order = mask.long().argsort(dim=1, stable=True)
        embeds, mask = embeds.gather(1, order[..., None].expand_as(embeds)), mask.gather(1, order)
        width = max(embeds.shape[1], len(null))
        embeds, mask = _left_pad(embeds, mask, width)
        null_embeds, null_mask = _left_pad(null[None], torch.ones(1, len(null), dtype=torch.bool, device=device), width)
        drop = cond.dropped(batch_size, device)[:, None]
        return torch.where(drop[..., None], null_embeds, embeds), torch.where(drop, null_mask, mask)

    def _run(self, embeds, mask, positions, keys=None, values=None):
        """One forward of the transformer body -> (hidden [B, M, D], keys, values: every layer's, past + new)."""
        from transformers import DynamicCache

        cache = DynamicCache() if keys is None else DynamicCache(ddp_cache_data=list(zip(keys, values)))
        out = self.body(
            inputs_embeds=embeds, attention_mask=mask.long(), position_ids=positions, use_cache=True,
            **{self._cache_argument: cache},
        )  # fmt: skip
        # The model appended this call's keys/values to the cache's layers in place.
        return out.last_hidden_state, [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers]

    # -- the layout: image tokens and row separators in the model's sequence

    def slots(self, n):
        """Sequence slots the first ``n`` image tokens take (int or LongTensor): with a row separator,
        one more after every full row."""
        return n if self.row_separator is None else n + n // self.row_length

    def _tokens_of_slots(self, slots: int) -> int:
        """The inverse of ``slots``: image tokens in ``slots`` filled slots."""
        return slots if self.row_separator is None else slots - slots // (self.row_length + 1)

    def _max_slots(self, new: int) -> int:
        """The most slots ``new`` consecutive tokens can take (static: a per-row call's width)."""
        return new if self.row_separator is None else new + -(-new // self.row_length)

    def _layout(self, tokens: torch.Tensor, start: torch.Tensor, width: int):
        """Tokens [B, M] at image positions start[r] + j -> (embeddings [B, T, D] of this call's ``width``
        slots, valid BoolTensor[B, T] (False: padding), predict LongTensor[B, M]: the slot whose
        output is the distribution of token start + j + 1)."""
        b, new = tokens.shape
        j = torch.arange(new, device=tokens.device)
        offsets = self.slots(start[:, None] + j) - self.slots(start)[:, None]  # (B, M)
        token_embeds = self.embed(tokens)
        if self.row_separator is None:
            embeds = token_embeds
        else:  # every slot a separator, then the tokens written at theirs (padding is masked out)
            separator = self.hf.get_input_embeddings()(self.row_separator.to(tokens.device))
            embeds = separator.to(token_embeds.dtype).expand(b, width, -1).clone()
            embeds = embeds.scatter(1, offsets[..., None].expand_as(token_embeds), token_embeds)
        filled = self.slots(start + new) - self.slots(start)  # (B,)
        valid = torch.arange(width, device=tokens.device)[None] < filled[:, None]
        predict = self.slots(start[:, None] + j + 1) - self.slots(start)[:, None] - 1
        return embeds, valid, predict

    # -- the AR contract

    def forward(self, tokens: torch.Tensor, cond: Condition | None = None, cache: KVCache | None = None):
        """tokens [B, L] -> logits [B, L + 1, V] (the forms of mgm.models.ar_transformer's module doc)."""
        if cache is not None and cache.lengths is not None:
            return self._forward_rows(tokens, cache)
        b, new = tokens.shape
        device = tokens.device
        filled = cache is not None and cache.hidden is not None
        start = self._tokens_of_slots(cache.length) if filled else 0
        if self.max_length is not None and start + new > self.max_length:
            raise ValueError(f"tokens: {start} cached + {new} new exceed max_length={self.max_length}")
        width = self.slots(start + new) - self.slots(start)
        x, _, predict = self._layout(tokens, torch.full((b,), start, device=device), width)
        if filled:
            prefix_mask, before = cache.prefix_mask, cache.hidden[:, -1:]
            mask = torch.cat([prefix_mask, torch.ones(b, cache.hidden.shape[1] - prefix_mask.shape[1] + width,
                                                      dtype=torch.bool, device=device)], 1)  # fmt: skip
            positions = prefix_mask.sum(1, keepdim=True) + self.slots(start) + torch.arange(width, device=device)
            hidden, keys, values = self._run(x, mask, positions, cache.keys[:], cache.values[:])
        else:
            prefix, prefix_mask = self._prefix(cond, b, device)
            mask = torch.cat([prefix_mask, torch.ones(b, width, dtype=torch.bool, device=device)], 1)
            positions = (mask.long().cumsum(1) - 1).clamp_min(0)
            hidden, keys, values = self._run(torch.cat([prefix.to(x.dtype), x], 1), mask, positions)
            before, hidden = hidden[:, prefix.shape[1] - 1 : prefix.shape[1]], hidden[:, prefix.shape[1] :]
        out = torch.cat([before, hidden.gather(1, predict[..., None].expand(-1, -1, hidden.shape[-1]))], 1)
        if cache is not None:
            if filled:
                cache.hidden = torch.cat([cache.hidden, hidden], 1)
            else:
                cache.num_prefix, cache.prefix_mask = prefix_mask.shape[1], prefix_mask
                cache.hidden = torch.cat([torch.zeros_like(before).expand(-1, prefix_mask.shape[1], -1), hidden], 1)
                cache.hidden[:, prefix_mask.shape[1] - 1] = before[:, 0]
            cache.keys, cache.values = keys, values
        return self.head(out)

    def _forward_rows(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Per-row lengths: tokens [B, M] at image positions lengths[r] + j; the buffers' slots past a
        row's length are masked out, and this call's slots are written at their row's indices."""
        b, new = tokens.shape
        p, start, device = cache.num_prefix, cache.lengths, tokens.device
        width = self._max_slots(new)
        if self.row_separator is not None:  # room for the separators (per_row counted tokens)
            _grow(cache, p + self.slots(self.max_length) + width)
        size = cache.keys[0].shape[2]
        slot = torch.arange(size - p, device=device)
        valid = torch.cat([cache.prefix_mask, slot[None] < self.slots(start)[:, None]], 1)  # what new slots see
        x, new_valid, predict = self._layout(tokens, start, width)
        mask = torch.cat([valid, new_valid], 1)
        positions = (
            cache.prefix_mask.sum(1, keepdim=True) + self.slots(start)[:, None] + torch.arange(width, device=device)
        )
        hidden, keys, values = self._run(x, mask, positions, cache.keys, cache.values)
        index = p + self.slots(start)[:, None] + torch.arange(width, device=device)  # (B, T): buffer indices
        where = index[:, None, :, None]
        cache.keys = [k.scatter(2, where.expand_as(n), n) for k, n in zip(cache.keys, (k[:, :, size:] for k in keys))]
        cache.values = [
            v.scatter(2, where.expand_as(n), n) for v, n in zip(cache.values, (v[:, :, size:] for v in values))
        ]
        last = cache.hidden.gather(1, (p + self.slots(start) - 1)[:, None, None].expand(b, 1, hidden.shape[-1]))
        cache.hidden = cache.hidden.scatter(1, index[..., None].expand_as(hidden), hidden)
        cache.lengths = start + new
        predicted = hidden.gather(1, predict[..., None].expand(-1, -1, hidden.shape[-1]))
        return self.head(torch.cat([last, predicted], 1))


def _grow(cache: KVCache, size: int) -> None:
    """Pad the per-row buffers of ``cache`` to ``size`` slots (no-op when they have them)."""
    pad = size - cache.keys[0].shape[2]
    if pad <= 0:
        return
    cache.keys = [F.pad(k, (0, 0, 0, pad)) for k in cache.keys]
    cache.values = [F.pad(v, (0, 0, 0, pad)) for v in cache.values]
    cache.hidden = F.pad(cache.hidden, (0, 0, 0, pad))


def _left_pad(embeds: torch.Tensor, mask: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, S, D] embeddings and their [B, S] mask -> padded on the left to ``width`` slots."""
    pad = width - embeds.shape[1]
    if pad == 0:
        return embeds, mask
    return F.pad(embeds, (0, 0, pad, 0)), F.pad(mask, (pad, 0), value=False)
