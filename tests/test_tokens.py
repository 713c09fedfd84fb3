import pytest
import torch

from mgm.tokens import TokenSpec


def test_spec_basics():
    spec = TokenSpec((1024,), (16, 16))
    assert (spec.num_codebooks, spec.num_positions, spec.mask_id, spec.vocab_size) == (1, 256, 1024, 1024)
    full = spec.full_mask(2)
    assert full.shape == (2, 1, 256) and bool(spec.is_masked(full).all())


def test_mixed_codebooks_have_per_codebook_mask_ids():
    spec = TokenSpec((8, 6), (5,))
    assert spec.mask_ids == (8, 6)
    assert spec.full_mask(1)[0, :, 0].tolist() == [8, 6]
    with pytest.raises(ValueError, match="mask_ids"):
        _ = spec.mask_id


@pytest.mark.parametrize(
    "codes, match",
    [
        (torch.zeros(2, 16, dtype=torch.long), "rank 3"),
        (torch.zeros(2, 2, 15, dtype=torch.long), "does not match the spec"),
        (torch.zeros(2, 2, 5, dtype=torch.float), "integer"),
        (torch.tensor([[[0, 1, 2, 3, 8]] * 2]), r"codes\[0, 0, 4\] = 8 is out of range"),
        (torch.tensor([[[0, 1, 2, 3, 4], [0, 0, 0, 0, -1]]]), "out of range"),
    ],
)
def test_check_codes_names_the_problem(codes, match):
    spec = TokenSpec((8, 6), (5,))
    with pytest.raises(ValueError, match=match):
        spec.check_codes(codes)


def test_check_codes_allows_mask_only_when_asked():
    spec = TokenSpec((8, 6), (5,))
    codes = spec.full_mask(1)
    spec.check_codes(codes, allow_mask=True)
    with pytest.raises(ValueError, match="out of range"):
        spec.check_codes(codes)


def test_bad_spec():
    with pytest.raises(ValueError, match="codebook_sizes"):
        TokenSpec((), (4,))
    with pytest.raises(ValueError, match="shape"):
        TokenSpec((4,), (0, 3))
