"""UVit2DAdapter: mgm's decoders on a tiny randomly initialised diffusers aMUSEd pipeline."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("transformers")

from diffusers import AmusedPipeline, AmusedScheduler, UVit2DModel, VQModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer  # noqa: E402

from mgm.decoding import maskgit_decode  # noqa: E402
from mgm.models import Condition  # noqa: E402
from mgm.models.uvit import (  # noqa: E402
    AmusedVQ,
    UVit2DAdapter,
    amused_mask_schedule,
    amused_micro_conds,
    encode_prompts,
    load_amused,
)
from mgm.tokens import TokenSpec  # noqa: E402

CODEBOOK, VOCAB, SIDE, PROMPT_LENGTH = 8, 10, 4, 8  # vocab > codebook + 1, as aMUSEd rounds it: mask id 9


def tiny_tokenizer(folder) -> CLIPTokenizer:
    """A CLIP BPE tokenizer over letters (no merges), written to ``folder``."""
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for i, ch in enumerate("abcdefghijklmnopqrstuvwxyz"):
        vocab[ch], vocab[ch + "</w>"] = 3 + i, 29 + i
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=PROMPT_LENGTH, pad_token="!"
    )


def tiny_pipeline(folder, side: int = SIDE, masking_schedule: str = "cosine") -> AmusedPipeline:
    """Hidden size 8, one layer; text width D = 8, pooled width P = 6 (so the packing pads)."""
    torch.manual_seed(0)
    transformer = UVit2DModel(
        hidden_size=8, cond_embed_dim=6, micro_cond_encode_dim=2, micro_cond_embed_dim=10, encoder_hidden_size=8,
        vocab_size=VOCAB, codebook_size=CODEBOOK, in_channels=8, block_out_channels=8, num_res_blocks=1,
        downsample=True, upsample=True, block_num_heads=1, num_hidden_layers=1, num_attention_heads=1,
        intermediate_size=8, sample_size=side,
    )  # fmt: skip
    vqvae = VQModel(
        block_out_channels=[8], down_block_types=["DownEncoderBlock2D"], up_block_types=["UpDecoderBlock2D"],
        latent_channels=4, layers_per_block=1, norm_num_groups=4, num_vq_embeddings=CODEBOOK, sample_size=side,
        mid_block_add_attention=False, lookup_from_codebook=True,
    )  # fmt: skip
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(
            vocab_size=64, hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
            projection_dim=6, max_position_embeddings=PROMPT_LENGTH, bos_token_id=0, pad_token_id=1, eos_token_id=2,
        )
    ).eval()  # fmt: skip
    scheduler = AmusedScheduler(mask_token_id=VOCAB - 1, masking_schedule=masking_schedule)
    pipe = AmusedPipeline(vqvae, tiny_tokenizer(folder), text_encoder, transformer, scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe(tmp_path_factory) -> AmusedPipeline:
    return tiny_pipeline(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def adapter(pipe) -> UVit2DAdapter:
    return load_amused(pipe)[0]


def prompts(pipe, texts):
    return encode_prompts(pipe.tokenizer, pipe.text_encoder, texts)


def direct(pipe, codes: torch.Tensor, hidden: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """The UVit called as AmusedPipeline calls it: logits [B, V, h, w]."""
    b = codes.shape[0]
    ids = torch.where(codes == CODEBOOK, VOCAB - 1, codes).view(b, SIDE, SIDE)
    micro = amused_micro_conds(SIDE, SIDE).expand(b, -1)
    return pipe.transformer(ids, encoder_hidden_states=hidden, pooled_text_emb=pooled, micro_conds=micro)


def test_spec_and_logits_match_the_uvit_called_directly(pipe, adapter):
    assert adapter.spec == TokenSpec((CODEBOOK,), (SIDE, SIDE)) and adapter.num_classes == 0
    assert adapter.mask_token_id == VOCAB - 1
    torch.manual_seed(1)
    codes = torch.randint(0, CODEBOOK + 1, (3, 1, SIDE * SIDE))  # some masked (id 8 = mgm's mask id)
    hidden, pooled = prompts(pipe, ["a cat", "dog", "red fox"])
    with torch.no_grad():
        logits = adapter(codes, adapter.condition(hidden, pooled))
        expected = direct(pipe, codes[:, 0], hidden, pooled)
    assert logits.shape == (3, 1, SIDE * SIDE, CODEBOOK)
    torch.testing.assert_close(logits, expected.flatten(2).transpose(1, 2)[:, None])


def test_dropped_rows_equal_the_empty_prompt_forward(pipe, adapter):
    torch.manual_seed(2)
    codes = torch.randint(0, CODEBOOK + 1, (2, 1, SIDE * SIDE))
    hidden, pooled = prompts(pipe, ["a cat", "dog"])
    cond = adapter.condition(hidden, pooled)
    null_hidden, null_pooled = prompts(pipe, ["", ""])
    with torch.no_grad():
        mixed = adapter(codes, cond.with_drop(torch.tensor([False, True])))
        empty = direct(pipe, codes[:, 0], null_hidden, null_pooled).flatten(2).transpose(1, 2)[:, None]
        torch.testing.assert_close(mixed[0], adapter(codes, cond)[0])
        torch.testing.assert_close(mixed[1], empty[1])
        torch.testing.assert_close(adapter(codes, None), empty)
        torch.testing.assert_close(adapter(codes, cond.null()), empty)
        # One batched forward over [cond, null], as classifier-free guidance runs it.
        paired = adapter(torch.cat([codes, codes]), Condition.cat([cond, cond.null()]))
        torch.testing.assert_close(paired[2:], empty)
    assert not torch.allclose(mixed[0], empty[0])


def test_maskgit_decode_with_guidance_changes_only_masked_positions(pipe, adapter):
    hidden, pooled = prompts(pipe, ["a cat", "dog"])
    torch.manual_seed(3)
    init = torch.randint(0, CODEBOOK, (2, 1, SIDE * SIDE))
    editable = torch.zeros(SIDE * SIDE, dtype=torch.bool)
    editable[5:12] = True
    res = maskgit_decode(
        adapter, adapter.spec, num_steps=4, cond=adapter.condition(hidden, pooled), guidance_scale=2.0,
        init_codes=init, editable=editable, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert res.nfe == 4 and res.codes.shape == init.shape
    assert torch.equal(res.codes[..., ~editable], init[..., ~editable])
    assert bool((res.codes < CODEBOOK).all())
    revealed = sum(r.revealed for r in res.trace)  # LongTensor[B]: each sample reveals its 7 editable positions
    assert len(res.trace) == 4 and torch.equal(revealed, torch.tensor([7, 7])), revealed
    again = maskgit_decode(
        adapter, adapter.spec, num_steps=4, cond=adapter.condition(hidden, pooled), guidance_scale=2.0,
        init_codes=init, editable=editable, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert torch.equal(again.codes, res.codes)


def amused_reveals(pipe, num_steps: int, guidance_scale: float) -> list[int]:
    """Tokens AmusedPipeline reveals at each step, read from the masked count its transformer sees."""
    masked = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: masked.append(
            int((kwargs.get("input_ids", args[0] if args else None)[0] == VOCAB - 1).sum())
        ),
        with_kwargs=True,
    )
    try:
        latents = pipe(
            prompt=["a cat"], num_inference_steps=num_steps, guidance_scale=guidance_scale, output_type="latent",
            generator=torch.Generator().manual_seed(0),
        ).images  # fmt: skip
    finally:
        hook.remove()
    assert not bool((latents == VOCAB - 1).any())
    return [before - after for before, after in zip(masked, masked[1:] + [0])]


def mgm_reveals(pipe, num_steps: int, schedule) -> list[int]:
    adapter, _ = load_amused(pipe)
    hidden, pooled = prompts(pipe, ["a cat"])
    res = maskgit_decode(
        adapter, adapter.spec, batch_size=1, num_steps=num_steps, schedule=schedule,
        cond=adapter.condition(hidden, pooled), guidance_scale=2.0, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert not bool(adapter.spec.is_masked(res.codes).any())
    return [int(r.revealed[0]) for r in res.trace]


@pytest.mark.parametrize(
    ("side", "num_steps", "schedule"), [(4, 4, "cosine"), (8, 12, "cosine"), (16, 12, "cosine"), (8, 12, "linear")]
)
def test_tokens_revealed_per_step_match_amused(tmp_path, side, num_steps, schedule):
    """The distribution-family check: both decode only masked tokens and, for the same steps and
    schedule, reveal the same number of tokens at each step (aMUSEd's guidance 3 is mgm's 2)."""
    pipe = tiny_pipeline(tmp_path, side=side, masking_schedule=schedule)
    ours = mgm_reveals(pipe, num_steps, amused_mask_schedule(schedule))
    assert ours == amused_reveals(pipe, num_steps, guidance_scale=3.0)
    assert sum(ours) == side * side


def test_float64_cosine_differs_from_amused_only_where_the_count_is_whole(tmp_path):
    """mgm's own "cosine" keeps 128 of 256 tokens masked after step 8 of 12; aMUSEd's float32
    cos(pi / 3) = 0.49999997 keeps 127, so steps 8 and 9 reveal one token more and one fewer."""
    pipe = tiny_pipeline(tmp_path, side=16)
    ours, theirs = mgm_reveals(pipe, 12, "cosine"), amused_reveals(pipe, 12, guidance_scale=3.0)
    assert [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b] == [7, 8]
    assert theirs[7] == ours[7] + 1 and theirs[8] == ours[8] - 1


def test_load_amused_from_a_saved_folder(pipe, adapter, tmp_path):
    pipe.save_pretrained(tmp_path / "amused")
    loaded, vq = load_amused(tmp_path / "amused")
    codes = torch.randint(0, CODEBOOK + 1, (2, 1, SIDE * SIDE), generator=torch.Generator().manual_seed(4))
    hidden, pooled = prompts(pipe, ["a cat", "dog"])
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(codes, loaded.condition(hidden, pooled)), adapter(codes, adapter.condition(hidden, pooled))
        )
    assert isinstance(vq, AmusedVQ) and vq.spec == adapter.spec
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        load_amused(tmp_path / "nowhere")


def test_amused_vq_decodes_as_the_pipeline_does(pipe):
    _, vq = load_amused(pipe)
    codes = torch.randint(0, CODEBOOK, (2, 1, SIDE * SIDE), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        images = vq.decode(codes)
        expected = pipe.vqvae.decode(
            codes[:, 0], force_not_quantize=True, shape=(2, SIDE, SIDE, pipe.vqvae.config.latent_channels)
        ).sample.clip(0, 1)
    assert images.shape == (2, 3, SIDE, SIDE)
    torch.testing.assert_close(images, expected)


def test_bad_input_raises_clear_errors(pipe, adapter):
    hidden, pooled = prompts(pipe, ["a cat"])
    codes = adapter.spec.full_mask(1)
    with pytest.raises(ValueError, match="packed by UVit2DAdapter.condition"):
        adapter(codes, Condition(context=hidden))
    with pytest.raises(ValueError, match="no class conditioning"):
        adapter(codes, Condition(labels=torch.tensor([0])))
    with pytest.raises(ValueError, match="prompt tokens"):
        adapter.condition(hidden[:, :3], pooled)
    with pytest.raises(ValueError, match="mask_token_id=3"):
        UVit2DAdapter(pipe.transformer, hidden, pooled, amused_micro_conds(SIDE, SIDE), mask_token_id=3)
    with pytest.raises(ValueError, match="micro_conds"):
        UVit2DAdapter(pipe.transformer, hidden, pooled, [1.0, 2.0])
    with pytest.raises(ValueError, match="masking_schedule"):
        amused_mask_schedule("square")
    with pytest.raises(ValueError, match=r"expected \[B, 1, 16\]"):
        adapter(torch.zeros(1, 1, 5, dtype=torch.long))
