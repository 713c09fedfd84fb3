"""Tiny randomly initialised Janus, Chameleon and Emu3 models built from configs (no download),
for tests, benchmarks and offline smoke runs of ``TransformersAR``. Needs transformers.

Each has a 2-layer Llama-style body of width 32, ``image_vocab`` image tokens (Chameleon's and
Emu3's in the text vocabulary after 40 text tokens) and a VQ decoder to 8 x 8 pixels from 4 x 4
tokens (Janus, Emu3; Chameleon's has none in transformers).
"""

from __future__ import annotations

import torch

TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=128)  # fmt: skip
TEXT_TOKENS = 40


def _chameleon_name(i: int) -> str:
    """Chameleon's name of image token i: IMGIMG, the digits as letters A-J, then Z."""
    return "IMGIMG" + "".join(chr(ord("A") + int(c)) for c in str(i)) + "Z"


def tiny_hf_model(family: str, image_vocab: int = 24, seed: int = 0):
    """A tiny random ``{Janus,Chameleon,Emu3}ForConditionalGeneration`` in eval mode."""
    import transformers as tf

    torch.manual_seed(seed)
    if family == "janus":
        vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                      patch_size=8, num_image_tokens=16)  # fmt: skip
        vq = dict(num_embeddings=image_vocab, embed_dim=8, base_channels=32, channel_multiplier=[1, 1],
                  num_res_blocks=1, latent_channels=8, image_token_embed_dim=32, projection_dim=32, num_patches=4,
                  num_hidden_layers=1, hidden_size=32)  # fmt: skip
        config = tf.JanusConfig(text_config=dict(model_type="llama", vocab_size=100, **TEXT), vision_config=vision,
                                vq_config=vq)  # fmt: skip
        return tf.JanusForConditionalGeneration(config).eval()
    vocab = {f"t{i}": i for i in range(TEXT_TOKENS)}
    vocab_size = TEXT_TOKENS + image_vocab + 6
    if family == "chameleon":
        vocab.update({_chameleon_name(i): TEXT_TOKENS + i for i in range(image_vocab)})
        vocab["<image>"] = TEXT_TOKENS + image_vocab
        vq = dict(embed_dim=8, num_embeddings=image_vocab, base_channels=32, channel_multiplier=[1, 1],
                  num_res_blocks=1, latent_channels=8, attn_resolutions=[], resolution=16, in_channels=3)  # fmt: skip
        config = tf.ChameleonConfig(vocab_size=vocab_size, vocabulary_map=vocab, vq_config=vq, **TEXT)
        return tf.ChameleonForConditionalGeneration(config).eval()
    if family == "emu3":
        vocab.update({f"<|visual token {i:06d}|>": TEXT_TOKENS + i for i in range(image_vocab)})
        vocab["<image>"], vocab["<|extra_200|>"] = TEXT_TOKENS + image_vocab, TEXT_TOKENS + image_vocab + 1
        vq = dict(codebook_size=image_vocab, embed_dim=8, latent_channels=8, base_channels=32,
                  channel_multiplier=[1, 1], num_res_blocks=1, attn_resolutions=[], hidden_size=32,
                  num_attention_heads=2, temporal_downsample_factor=1, out_channels=3, in_channels=3)  # fmt: skip
        text = dict(vocab_size=vocab_size, pad_token_id=0, bos_token_id=1, eos_token_id=2, **TEXT)
        config = tf.Emu3Config(text_config=text, vq_config=vq, vocabulary_map=vocab)
        return tf.Emu3ForConditionalGeneration(config).eval()
    raise ValueError(f"family={family!r}: expected 'janus', 'chameleon' or 'emu3'")
