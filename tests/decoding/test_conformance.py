"""The decoder conformance suite: every registered method, on tiny models, keeps the contract.

A new decoder gets these checks by registering (``mgm.decoding.registry``): nothing masked at the
end, codes in range and [B, K, N], tokens outside ``editable`` unchanged, a seed reproduces the
output, a sample does not depend on the batch it is decoded in, ``nfe`` counts the model's
passes, guidance runs as one batched pass, ``batch_size=None`` follows the inputs, a callback sees
every step, and bad options are ValueErrors before any model call.
"""

from __future__ import annotations

import pytest
import torch

from mgm.decoding import AR, FLEX_AR, MASKED, METHODS
from mgm.models import ARTransformer, Condition, MaskedTransformer
from mgm.models.protocols import ModelWrapper
from tests.conftest import decodable

# Flexible-order AR decoders (ARPG, LPD) take the masked signature and keep the same contract.
MASKED_METHODS = [name for name, m in METHODS.items() if m.kind in (MASKED, FLEX_AR)]
AR_METHODS = [name for name, m in METHODS.items() if m.kind == AR]


class Counting(ModelWrapper):
    """Counts every pass of the wrapped model and the batch size it ran at."""

    def __init__(self, model):
        super().__init__(model)
        self.batches = []
        self.critic_batches = []  # a token critic's passes (conditional rows only)

    def __call__(self, *args, **kwargs):
        self.batches.append(args[0].shape[0])
        return self.model(*args, **kwargs)

    def forward_cached(self, codes, cond):
        self.batches.append(codes.shape[0])
        return self.model.forward_cached(codes, cond)

    def forward_partial(self, codes, positions, cond, cache, **kwargs):
        self.batches.append(codes.shape[0])
        return self.model.forward_partial(codes, positions, cond, cache, **kwargs)

    def forward_group(self, tokens, positions, targets, cond, cache, *masks):
        self.batches.append(tokens.shape[0])
        return self.model.forward_group(tokens, positions, targets, cond, cache, *masks)

    def critic_scores(self, codes, cond):
        self.critic_batches.append(codes.shape[0])
        return self.model.critic_scores(codes, cond)


def generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.fixture(params=["one codebook, 2-D", "two codebooks, 1-D"])
def masked_model(request) -> MaskedTransformer:
    torch.manual_seed(0)
    if request.param == "one codebook, 2-D":
        return MaskedTransformer([12], [3, 4], dim=32, depth=1, num_heads=2, num_classes=3).eval()
    return MaskedTransformer([8, 6], [7], dim=32, depth=1, num_heads=2, num_classes=3).eval()


@pytest.fixture
def ar_model() -> ARTransformer:
    torch.manual_seed(0)
    return ARTransformer(vocab_size=9, max_length=12, dim=32, depth=1, num_heads=2, num_classes=3).eval()


# -- masked decoders ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", MASKED_METHODS)
def test_masked_codes_complete_in_range_and_counted(method, masked_model):
    decode, spec = METHODS[method].decode, masked_model.spec
    masked_model = decodable(method, masked_model)
    counting = Counting(masked_model)
    steps = []
    res = decode(counting, spec, batch_size=3, generator=torch.Generator().manual_seed(0),
                 callback=lambda step, codes: steps.append((step, tuple(codes.shape))))  # fmt: skip
    assert res.codes.shape == (3, spec.num_codebooks, spec.num_positions) and res.codes.dtype == torch.long
    assert not spec.is_masked(res.codes).any(), "nothing masked at the end"
    for k, size in enumerate(spec.codebook_sizes):
        assert 0 <= int(res.codes[:, k].min()) and int(res.codes[:, k].max()) < size
    assert res.nfe == len(counting.batches) + len(counting.critic_batches) >= 1, "nfe counts the sequential passes"
    assert res.passes_per_sample().tolist() == [res.nfe] * 3
    assert [s for s, _ in steps] == list(range(len(steps))) and len(steps) == len(res.trace) >= 1
    assert all(shape == (3, spec.num_codebooks, spec.num_positions) for _, shape in steps)


@pytest.mark.parametrize("method", MASKED_METHODS)
def test_masked_editing_keeps_every_token_outside_editable(method, masked_model):
    decode, spec = METHODS[method].decode, masked_model.spec
    masked_model = decodable(method, masked_model)
    g = torch.Generator().manual_seed(1)
    init = torch.stack([torch.randint(size, (4, spec.num_positions), generator=g) for size in spec.codebook_sizes], 1)
    editable = torch.rand(init.shape, generator=g) < 0.5
    res = decode(masked_model, spec, init_codes=init, editable=editable, generator=generators(range(4)))
    assert res.codes.shape == init.shape, "batch_size=None: from init_codes"
    assert torch.equal(res.codes[~editable], init[~editable])
    assert not spec.is_masked(res.codes).any()


@pytest.mark.parametrize("method", MASKED_METHODS)
def test_masked_seed_reproduces_and_samples_ignore_the_batch_split(method, masked_model):
    decode, spec = METHODS[method].decode, masked_model.spec
    masked_model = decodable(method, masked_model)
    labels = torch.tensor([0, 1, 2, 1])
    kwargs = dict(guidance_scale=1.5, temperature=1.0)
    whole = decode(masked_model, spec, cond=Condition(labels=labels), generator=generators(range(4)), **kwargs)
    again = decode(masked_model, spec, cond=Condition(labels=labels), generator=generators(range(4)), **kwargs)
    assert torch.equal(whole.codes, again.codes), "the same seeds give the same codes"
    parts = [
        decode(
            masked_model, spec, cond=Condition(labels=labels[rows]), generator=generators(range(4)[rows]), **kwargs
        ).codes  # fmt: skip
        for rows in (slice(0, 1), slice(1, 4))
    ]
    assert torch.equal(torch.cat(parts), whole.codes), "sample i depends only on its own generator"
    other = decode(masked_model, spec, cond=Condition(labels=labels), generator=generators(range(10, 14)), **kwargs)
    assert not torch.equal(other.codes, whole.codes)


@pytest.mark.parametrize("method", MASKED_METHODS)
def test_masked_guidance_is_one_batched_pass_and_zero_is_unguided(method, masked_model):
    decode, spec = METHODS[method].decode, masked_model.spec
    masked_model = decodable(method, masked_model)
    cond = Condition(labels=torch.tensor([0, 2]))
    guided = Counting(masked_model)
    decode(guided, spec, cond=cond, guidance_scale=2.0, generator=torch.Generator().manual_seed(0))
    # A verifying decoder also runs its draft + 1 states per sample in one forward.
    rows = {1, METHODS[method].defaults().get("draft", 0) + 1}
    assert set(guided.batches) <= {4 * r for r in rows}, "conditional and null rows in one batched forward"
    assert set(guided.critic_batches) <= {2}, "a critic scores the conditional rows"
    plain = Counting(masked_model)
    zero = decode(plain, spec, cond=cond, guidance_scale=0.0, generator=torch.Generator().manual_seed(0))
    assert set(plain.batches) <= {2 * r for r in rows}, "guidance 0: the conditional pass only"
    default = decode(masked_model, spec, cond=cond, generator=torch.Generator().manual_seed(0))
    assert torch.equal(zero.codes, default.codes)
    assert zero.codes.shape[0] == 2, "batch_size=None: from cond"
    assert decode(masked_model, spec).codes.shape[0] == 1, "batch_size=None and nothing else: 1"


BAD_MASKED = [
    ({"no_such_option": 1}, r"unknown option\(s\) \['no_such_option'\]"),
    ({"temperature": -1.0}, "temperature=-1.0"),
    ({"temperature": "1.0"}, "temperature='1.0'"),
    ({"temperature": float("inf")}, "temperature=inf"),
    ({"guidance_scale": float("nan"), "cond": "labels"}, "guidance_scale=nan"),
    ({"choice_temperature": float("inf")}, "choice_temperature=inf"),
    ({"top_k": 0}, "top_k=0"),
    ({"top_k": 10_000}, "top_k=10000: larger than the vocabulary"),
    ({"top_p": 1.5}, "top_p=1.5"),
    ({"guidance_scale": 1.0}, "needs a condition"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"batch_size": True}, "batch_size=True"),
    ({"batch_size": 3, "cond": "labels"}, "batch size 2 does not match batch_size=3"),
    ({"generator": "gens3"}, "a list of 3 generators for a batch of 2"),
    ({"generator": 7}, "generator"),
    ({"guidance_annealing": "sometimes"}, "guidance_annealing='sometimes'"),
    ({"dtype": "fp8"}, "dtype='fp8'"),
    ({"device": "nowhere"}, "device='nowhere'"),
]


@pytest.mark.parametrize("kwargs, match", BAD_MASKED, ids=[m for _, m in BAD_MASKED])
@pytest.mark.parametrize("method", MASKED_METHODS)
def test_masked_bad_options_fail_before_any_model_call(method, masked_model, kwargs, match):
    kwargs = dict(kwargs)
    if "choice_temperature" in kwargs and METHODS[method].kind != MASKED:
        match = r"unknown option\(s\) \['choice_temperature'\]"  # no confidences to rank
    if kwargs.get("cond") == "labels":
        kwargs["cond"] = Condition(labels=torch.tensor([0, 1]))
        kwargs.setdefault("batch_size", None)
    if kwargs.get("generator") == "gens3":
        kwargs.update(generator=generators(range(3)), batch_size=2)
    counting = Counting(decodable(method, masked_model))
    with pytest.raises(ValueError, match=match):
        METHODS[method].decode(counting, masked_model.spec, **kwargs)
    assert counting.batches == [], "refused before any model call"


# -- AR decoders -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", AR_METHODS)
def test_ar_codes_prefix_seed_split_and_nfe(method, ar_model):
    decode = METHODS[method].decode
    counting = Counting(ar_model)
    labels = torch.tensor([0, 1, 2])
    steps = []
    res = decode(counting, 12, cond=Condition(labels=labels), generator=generators(range(3)), guidance_scale=1.0,
                 callback=lambda step, tokens: steps.append(tokens.shape))  # fmt: skip
    assert res.codes.shape == (3, 1, 12) and 0 <= int(res.codes.min()) and int(res.codes.max()) < 9
    assert res.nfe == len(counting.batches) and int(res.passes_per_sample().sum()) >= res.nfe // 3
    assert set(counting.batches) <= {2, 6}, "guidance: conditional and null rows in one batch"
    assert steps and all(s[1] == 1 for s in steps)
    parts = [
        decode(
            ar_model, 12, cond=Condition(labels=labels[rows]), generator=generators(range(3)[rows]), guidance_scale=1.0
        ).codes  # fmt: skip
        for rows in (slice(0, 2), slice(2, 3))
    ]
    assert torch.equal(torch.cat(parts), res.codes), "sample i depends only on its own generator"
    prefix = torch.tensor([[1, 2, 3], [4, 5, 6]])
    given = decode(ar_model, 12, prefix=prefix, generator=torch.Generator().manual_seed(0))
    assert given.codes.shape == (2, 1, 12) and torch.equal(given.codes[:, 0, :3], prefix)


BAD_AR = [
    ({"no_such_option": 1}, r"unknown option\(s\) \['no_such_option'\]"),
    ({"choice_temperature": 2.0}, r"unknown option\(s\) \['choice_temperature'\]"),
    ({"temperature": float("nan")}, "temperature=nan"),
    ({"top_k": 100}, "top_k=100: larger than the vocabulary"),
    ({"batch_size": -1}, "batch_size=-1"),
    ({"prefix": "long"}, "longer than length"),
    ({"prefix": "float"}, "prefix"),
    ({"length": 13}, "at most 12 tokens"),
    ({"guidance_scale": 2.0}, "needs a condition"),
]


@pytest.mark.parametrize("kwargs, match", BAD_AR, ids=[m for _, m in BAD_AR])
@pytest.mark.parametrize("method", AR_METHODS)
def test_ar_bad_options_fail_before_any_model_call(method, ar_model, kwargs, match):
    kwargs = dict(kwargs)
    length = kwargs.pop("length", 12)
    if kwargs.get("prefix") == "long":
        kwargs["prefix"] = torch.zeros(1, 13, dtype=torch.long)
        length = 12
    if kwargs.get("prefix") == "float":
        kwargs["prefix"] = torch.zeros(1, 3)
    counting = Counting(ar_model)
    with pytest.raises(ValueError, match=match):
        METHODS[method].decode(counting, length, **kwargs)
    assert counting.batches == []


def test_every_method_registers_options_that_validate_their_defaults():
    for name, method in METHODS.items():
        sampling, run, own = method.parse({})
        assert type(own) is method.options and method.kind in (MASKED, AR, FLEX_AR)
        assert set(method.defaults()) <= set(method.option_names), name
