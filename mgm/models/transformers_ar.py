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

Not handled: image formats with separator tokens inside the image (Emu3's end-of-line token after
every row, Lumina-mGPT's new-line tokens); tokens are the H x W grid in raster order.

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
        grid: (h, w) of the token grid, for ``decode_pixels`` of Emu3; default square.
    """

    row_cache = True  # it honours per-row cache lengths (mgm.models.ar_transformer's module doc)

    def __init__(self, hf_model, *, null_prompt=None, max_length: int | None = None, grid=None):
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

    def forward(self, tokens: torch.Tensor, cond: Condition | None = None, cache: KVCache | None = None):
        """tokens [B, L] -> logits [B, L + 1, V] (the forms of mgm.models.ar_transformer's module doc)."""
        if cache is not None and cache.lengths is not None:
            return self._forward_rows(tokens, cache)
        b, new = tokens.shape
        start = 0 if cache is None else cache.length
        if self.max_length is not None and start + new > self.max_length:
            raise ValueError(f"tokens: {start} cached + {new} new exceed max_length={self.max_length}")
        device = tokens.device
        x = self.embed(tokens)
        if cache is None or cache.hidden is None:
            prefix, prefix_mask = self._prefix(cond, b, device)
            x = torch.cat([prefix.to(x.dtype), x], 1)
            mask = torch.cat([prefix_mask, torch.ones(b, new, dtype=torch.bool, device=device)], 1)
            positions = (mask.long().cumsum(1) - 1).clamp_min(0)
            hidden, keys, values = self._run(x, mask, positions)
            if cache is None:
                return self.head(hidden[:, prefix.shape[1] - 1 :])
            cache.keys, cache.values, cache.num_prefix, cache.prefix_mask = keys, values, prefix.shape[1], prefix_mask
            cache.hidden = hidden
            return self.head(hidden[:, -(new + 1) :])
        if new == 0:
            return self.head(cache.hidden[:, -1:])
        filled = cache.num_prefix + start
        mask = torch.cat([cache.prefix_mask, torch.ones(b, start + new, dtype=torch.bool, device=device)], 1)
        positions = cache.prefix_mask.sum(1, keepdim=True) + start + torch.arange(new, device=device)
        hidden, cache.keys, cache.values = self._run(x, mask, positions, cache.keys[:], cache.values[:])
        cache.hidden = torch.cat([cache.hidden[:, :filled], hidden], 1)
        return self.head(cache.hidden[:, -(new + 1) :])

    def _forward_rows(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Per-row lengths: tokens [B, M] at positions lengths[r] + j; the buffers' slots past a
        row's length are masked out, and this call's slots are written at their row's indices."""
        b, new = tokens.shape
        p, start, device = cache.num_prefix, cache.lengths, tokens.device
        slots = cache.keys[0].shape[2]
        slot = torch.arange(slots - p, device=device)
        valid = torch.cat([cache.prefix_mask, slot[None] < start[:, None]], 1)  # (B, S): what a new token may see
        mask = torch.cat([valid, torch.ones(b, new, dtype=torch.bool, device=device)], 1)
        positions = cache.prefix_mask.sum(1, keepdim=True) + start[:, None] + torch.arange(new, device=device)
        hidden, keys, values = self._run(self.embed(tokens), mask, positions, cache.keys, cache.values)
        index = p + start[:, None] + torch.arange(new, device=device)  # (B, M): buffer indices, prompt first
        where = index[:, None, :, None]
        cache.keys = [k.scatter(2, where.expand_as(n), n) for k, n in zip(cache.keys, (k[:, :, slots:] for k in keys))]
        cache.values = [
            v.scatter(2, where.expand_as(n), n) for v, n in zip(cache.values, (v[:, :, slots:] for v in values))
        ]
        last = cache.hidden.gather(1, (p + start - 1)[:, None, None].expand(b, 1, hidden.shape[-1]))
        cache.hidden = cache.hidden.scatter(1, index[..., None].expand_as(hidden), hidden)
        cache.lengths = start + new
        return self.head(torch.cat([last, hidden], 1))


def _left_pad(embeds: torch.Tensor, mask: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, S, D] embeddings and their [B, S] mask -> padded on the left to ``width`` slots."""
    pad = width - embeds.shape[1]
    if pad == 0:
        return embeds, mask
    return F.pad(embeds, (0, 0, pad, 0)), F.pad(mask, (pad, 0), value=False)
