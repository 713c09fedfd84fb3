import torch

from mgm.decoding.sampling import filter_logits, sample_tokens


def test_gumbel_max_sampling_matches_softmax():
    # 40k draws from a fixed distribution: every frequency within 0.015 of its probability
    # (the standard error is at most 0.0025, so this is a 6-sigma bound).
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -3.0])
    g = torch.Generator().manual_seed(0)
    draws = sample_tokens(logits.expand(40_000, 5), temperature=1.0, generator=g)
    freq = torch.bincount(draws, minlength=5).float() / draws.numel()
    assert torch.allclose(freq, logits.softmax(0), atol=0.015)
    hot = sample_tokens(logits.expand(40_000, 5), temperature=0.5, generator=g)
    freq = torch.bincount(hot, minlength=5).float() / hot.numel()
    assert torch.allclose(freq, (logits / 0.5).softmax(0), atol=0.015)


def test_top_k_and_top_p_filters():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [False, False, True, True]
    # Nucleus 0.7: 0.5 alone is short of it, 0.5 + 0.3 covers it -> keep two.
    assert torch.isinf(filter_logits(logits, top_p=0.7)).tolist() == [False, False, True, True]
    assert torch.isinf(filter_logits(logits, top_p=0.4)).tolist() == [False, True, True, True]
    g = torch.Generator().manual_seed(0)
    draws = sample_tokens(logits.expand(2000, 4), top_p=0.7, generator=g)
    assert set(draws.unique().tolist()) == {0, 1}
