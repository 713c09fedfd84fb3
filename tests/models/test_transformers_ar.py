"""TransformersAR: transformers' Janus / Chameleon / Emu3 behind mgm's AR contract, on tiny random instances."""

import itertools

import pytest
import torch

pytest.importorskip("transformers")

from mgm.decoding.ar import ar_decode  # noqa: E402
from mgm.decoding.jacobi import sjd_decode  # noqa: E402
from mgm.models import KVCache, TransformersAR  # noqa: E402
from mgm.models.transformers_tiny import tiny_hf_model  # noqa: E402

FAMILIES = ("janus", "chameleon", "emu3")
PROMPTS = torch.tensor([[1, 5, 6, 7, 9], [0, 0, 1, 8, 9]])  # row 1 left-padded
PROMPT_MASK = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return TransformersAR(tiny_hf_model(request.param), max_length=16)


def reference_logits(model, prompt: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """transformers' own full forward (no mgm cache) -> image logits [1, L + 1, V] after the prompt."""
    hf = model.hf
    if model.family == "janus":
        embeds = torch.cat([hf.get_input_embeddings()(prompt), hf.prepare_embeddings_for_image_generation(tokens)], 1)
        hidden = hf.model.language_model(inputs_embeds=embeds).last_hidden_state
        logits = hf.model.generation_head(hidden)
    else:
        body = hf.model.text_model if model.family == "emu3" else hf.model
        ids = torch.cat([prompt, model.image_token_ids[tokens]], 1)
        logits = hf.lm_head(body(input_ids=ids).last_hidden_state)[..., model.image_token_ids]
    return logits[:, prompt.shape[1] - 1 :]


def close(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> bool:
    return bool((a - b).abs().max() <= 1e-4 * scale.abs().max())


@torch.no_grad()
def test_logits_match_transformers_full_forward_padded_prompts_included(model):
    tokens = torch.randint(0, model.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    ours = model(tokens, model.prompt(PROMPTS, PROMPT_MASK))
    for row in range(2):
        prompt = PROMPTS[row : row + 1, PROMPT_MASK[row].bool()]
        ref = reference_logits(model, prompt, tokens[row : row + 1])
        assert close(ours[row], ref[0], ref)


@torch.no_grad()
def test_a_right_padded_prompt_is_the_same_prompt(model):
    tokens = torch.randint(0, model.vocab_size, (1, 6), generator=torch.Generator().manual_seed(1))
    plain = model(tokens, model.prompt(torch.tensor([[1, 8, 9]])))
    padded = model(tokens, model.prompt(torch.tensor([[1, 8, 9, 0, 0]]), torch.tensor([[1, 1, 1, 0, 0]])))
    assert close(plain, padded, plain)


@torch.no_grad()
def test_a_draft_window_in_one_cached_forward_matches_the_full_forward(model):
    """The cache grown token by token, then a 5-token window in one call: the full forward's logits."""
    cond = model.prompt(PROMPTS, PROMPT_MASK)
    tokens = torch.randint(0, model.vocab_size, (2, 12), generator=torch.Generator().manual_seed(2))
    full = model(tokens, cond)
    cache = KVCache()
    model(tokens[:, :3], cond, cache=cache)
    model(tokens[:, 3:4], cond, cache=cache)
    window = model(tokens[:, 4:9], cond, cache=cache)
    assert close(window, full[:, 4:10], full)
    cache.truncate(6)  # roll back 3 rejected drafts, then continue
    again = model(tokens[:, 6:12], cond, cache=cache)
    assert close(again, full[:, 6:13], full)


@torch.no_grad()
def test_per_row_lengths_roll_rows_back_independently(model):
    cond = model.prompt(PROMPTS, PROMPT_MASK)
    tokens = torch.randint(0, model.vocab_size, (2, 12), generator=torch.Generator().manual_seed(3))
    cache = KVCache()
    model(tokens[:, :4], cond, cache=cache)
    cache.per_row(16)
    cache.lengths = torch.tensor([4, 2])  # row 1 rejects its last two tokens
    fed = tokens[:, 4:9]
    out = model(fed, cond, cache=cache)
    assert cache.lengths.tolist() == [9, 7]
    for row, kept in ((0, 4), (1, 2)):
        sequence = torch.cat([tokens[row : row + 1, :kept], fed[row : row + 1]], 1)
        ref = model(sequence, cond.select(row))
        assert close(out[row], ref[0, kept:], ref)


@pytest.mark.parametrize("guidance_scale", [0.0, 3.0])
def test_greedy_sjd_equals_greedy_ar(model, guidance_scale):
    cond = model.prompt(PROMPTS, PROMPT_MASK)
    ar = ar_decode(model, 16, cond=cond, temperature=0.0, guidance_scale=guidance_scale)
    for window in (1, 5, 16):
        sjd = sjd_decode(model, 16, cond=cond, temperature=0.0, guidance_scale=guidance_scale, window=window)
        assert torch.equal(sjd.codes, ar.codes)
        assert sjd.nfe <= 16


def test_unconditional_sampling_uses_the_null_prompt(model):
    result = ar_decode(model, 16, batch_size=2, temperature=0.0)
    null = model.prompt(model.null_prompt[None].repeat(2, 1))
    assert torch.equal(result.codes, ar_decode(model, 16, cond=null, temperature=0.0).codes)


def test_decode_pixels(model):
    codes = torch.randint(0, model.vocab_size, (2, 1, 16))
    if model.family == "chameleon":
        with pytest.raises(ValueError, match="no VQ decoder"):
            model.decode_pixels(codes)
        return
    images = model.decode_pixels(codes)
    assert images.shape == (2, 3, 8, 8) and 0 <= images.min() and images.max() <= 1


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="hf_model: expected a transformers Janus"):
        TransformersAR(torch.nn.Linear(2, 2))
    model = TransformersAR(tiny_hf_model("emu3"), max_length=16)
    with pytest.raises(ValueError, match="ids: expected a LongTensor"):
        model.prompt(torch.ones(2, 3))
    with pytest.raises(ValueError, match="null_prompt"):
        TransformersAR(model.hf, null_prompt=[])
    with pytest.raises(ValueError, match="max_length=16"):
        model(torch.zeros(1, 17, dtype=torch.long))


@torch.no_grad()
def test_sjd_samples_the_distribution_of_ar():
    """Lossless in distribution: SJD's samples of 3 tokens over a 4-token vocabulary against the model's
    exact distribution (64 sequences, enumerated). Sharpened head so that the law is far from uniform; the
    same test on a wrong law (temperature 2) shows it bites. n = 20000 per sampler (noise TV about 0.016),
    fixed seeds."""
    hf = tiny_hf_model("janus", image_vocab=4, seed=4)
    hf.model.generation_head.vision_head.weight.mul_(200)
    model = TransformersAR(hf, max_length=3)
    cond = model.prompt(torch.tensor([[1, 5, 6]]))
    sequences = torch.tensor(list(itertools.product(range(4), repeat=3)))
    logp = model(sequences, model.prompt(torch.tensor([[1, 5, 6]]).repeat(64, 1))).log_softmax(-1)
    exact = logp[:, :3].gather(2, sequences[..., None])[..., 0].sum(1).exp()
    assert abs(float(exact.sum()) - 1) < 1e-4 and float(exact.max()) > 0.1  # a proper, non-uniform law
    n = 20000
    cond = model.prompt(torch.tensor([[1, 5, 6]]).repeat(n, 1))

    def tv(result) -> float:
        index = (result.codes[:, 0] * torch.tensor([16, 4, 1])).sum(1)
        empirical = torch.bincount(index, minlength=64).double() / n
        return 0.5 * float((empirical - exact.double()).abs().sum())

    generator = torch.Generator().manual_seed(5)
    sjd = sjd_decode(model, 3, cond=cond, generator=generator, window=3)
    ar = ar_decode(model, 3, cond=cond, generator=torch.Generator().manual_seed(6))
    hot = ar_decode(model, 3, cond=cond, generator=torch.Generator().manual_seed(7), temperature=2.0)
    assert tv(ar) < 0.03 and tv(sjd) < 0.03, (tv(ar), tv(sjd))
    assert tv(hot) > 0.1, tv(hot)


def test_the_transformers_sjd_benchmark_runs(tmp_path):
    import json

    from benchmarks.transformers_sjd import main

    main(["--length", "6", "--sharpen", "1", "--repeats", "1", "--out", str(tmp_path / "r.json")])
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert {r["method"] for r in rows} == {"ar", "sjd w16"} and all(r["passes_per_image"] <= 6 for r in rows)
    assert [r["passes_per_image"] for r in rows if r["method"] == "ar"] == [6.0] * 4


@pytest.fixture(scope="module")
def separated():
    """Emu3 with its end-of-line token after every row of a 4 x 4 grid."""
    return TransformersAR(tiny_hf_model("emu3"), max_length=16, grid=(4, 4))


def interleaved(model, tokens: torch.Tensor) -> torch.Tensor:
    """The model's own image sequence: each row's BPE ids, then the separator -> [1, slots]."""
    ids = []
    for i, token in enumerate(tokens[0].tolist()):
        ids.append(int(model.image_token_ids[token]))
        if i % model.row_length == model.row_length - 1:
            ids.append(int(model.row_separator))
    return torch.tensor([ids])


@torch.no_grad()
def test_row_separators_match_the_models_own_sequence(separated):
    model = separated
    assert int(model.row_separator) == model.hf.model.vocabulary_mapping.eol_token_id and model.row_length == 4
    tokens = torch.randint(0, model.vocab_size, (1, 11), generator=torch.Generator().manual_seed(8))
    prompt = torch.tensor([[1, 5, 6, 7]])
    ours = model(tokens, model.prompt(prompt))
    sequence = torch.cat([prompt, interleaved(model, tokens)], 1)
    logits = model.hf.lm_head(model.hf.model.text_model(input_ids=sequence).last_hidden_state)[
        0, :, model.image_token_ids
    ]
    # Token i's distribution: at the slot before it (the separator when i starts a row).
    ref = logits[[prompt.shape[1] + model.slots(i) - 1 for i in range(12)]]
    assert close(ours[0], ref, ref)
    # Cached in pieces (a row end inside a piece and at its edge), then per row.
    cache = KVCache()
    parts = [model(tokens[:, :3], model.prompt(prompt), cache=cache), model(tokens[:, 3:9], cache=cache)[:, 1:]]
    assert close(torch.cat(parts, 1), ours[:, :10], ours)
    assert cache.length == model.slots(9)


@torch.no_grad()
def test_row_separators_under_per_row_lengths(separated):
    model = separated
    cond = model.prompt(PROMPTS, PROMPT_MASK)
    tokens = torch.randint(0, model.vocab_size, (2, 12), generator=torch.Generator().manual_seed(9))
    cache = KVCache()
    model(tokens[:, :5], cond, cache=cache)
    cache.per_row(16)
    cache.lengths = torch.tensor([5, 2])
    fed = tokens[:, 5:11]
    out = model(fed, cond, cache=cache)
    for row, kept in ((0, 5), (1, 2)):
        ref = model(torch.cat([tokens[row : row + 1, :kept], fed[row : row + 1]], 1), cond.select(row))
        assert close(out[row], ref[0, kept:], ref)


@pytest.mark.parametrize("guidance_scale", [0.0, 3.0])
def test_greedy_sjd_equals_greedy_ar_with_row_separators(separated, guidance_scale):
    cond = separated.prompt(PROMPTS, PROMPT_MASK)
    ar = ar_decode(separated, 16, cond=cond, temperature=0.0, guidance_scale=guidance_scale)
    for window in (3, 16):
        sjd = sjd_decode(separated, 16, cond=cond, temperature=0.0, guidance_scale=guidance_scale, window=window)
        assert torch.equal(sjd.codes, ar.codes)


def test_a_row_separator_needs_the_row_length_and_the_token_count():
    hf = tiny_hf_model("chameleon")
    with pytest.raises(ValueError, match="row_length=None"):
        TransformersAR(hf, max_length=16, row_separator=3)
    with pytest.raises(ValueError, match="max_length=None"):
        TransformersAR(hf, row_separator=3, row_length=4)
