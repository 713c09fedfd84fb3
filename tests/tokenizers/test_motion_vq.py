import pytest
import torch

from mgm.data.motion_features import FEATURE_DIM, FOOT_CONTACTS, LOCAL_VELOCITY, RIC, recover_joints
from mgm.data.skeleton import JOINT_INDEX
from mgm.tokenizers import MotionVQ
from mgm.tokenizers.motion_vq import LOWER_JOINTS, PART_DIMS, UPPER_JOINTS, EMACodebook
from tests.tokenizers.contract import check_tokenizer_contract


@pytest.fixture
def tiny() -> MotionVQ:
    torch.manual_seed(0)
    return MotionVQ(codebook_size=16, code_dim=8, width=16, depth=2, max_frames=32).eval()


def features(batch: int = 2, frames: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, FEATURE_DIM, generator=torch.Generator().manual_seed(seed))


def test_part_dims_partition_the_features():
    lower, upper = (set(dims) for dims in PART_DIMS)
    assert not lower & upper and lower | upper == set(range(FEATURE_DIM))
    assert (len(lower), len(upper)) == (107, 156)
    assert set(LOWER_JOINTS) | set(UPPER_JOINTS) == set(range(22)) and not set(LOWER_JOINTS) & set(UPPER_JOINTS)
    assert {0, 1, 2, 3} | set(range(FOOT_CONTACTS.start, FOOT_CONTACTS.stop)) <= lower, "root and foot contacts"
    wrist, knee = JOINT_INDEX["left_wrist"], JOINT_INDEX["right_knee"]
    assert set(range(RIC.start + 3 * (wrist - 1), RIC.start + 3 * wrist)) <= upper
    assert set(range(RIC.start + 3 * (knee - 1), RIC.start + 3 * knee)) <= lower
    assert set(range(LOCAL_VELOCITY.start, LOCAL_VELOCITY.start + 3)) <= lower, "the pelvis's velocity"


def test_shapes_and_spec(tiny):
    assert tiny.downsample == 4 and tiny.spec.codebook_sizes == (16, 16) and tiny.spec.shape == (8,)
    check_tokenizer_contract(tiny, features(frames=32), extent=(32,))
    codes = tiny.encode(features(frames=34))  # the last 34 % 4 = 2 frames are dropped
    assert codes.shape == (2, 2, 8) and codes.dtype == torch.long
    tiny.spec_for_frames(34).check_codes(codes)
    assert tiny.decode(codes).shape == (2, 32, FEATURE_DIM)
    assert MotionVQ(codebook_size=8, code_dim=4, width=8, depth=1).spec.shape == (49,), "196 frames -> 49 tokens"
    assert tiny.tokens_for_frames(196) == 49 and tiny.frames_for_tokens(49) == 196
    assert tiny.spec_for_frames(7).shape == (1,)
    assert tiny.decode(torch.zeros(1, 2, 3, dtype=torch.long)).shape == (1, 12, FEATURE_DIM), "any length decodes"


def test_keeping_one_part_keeps_its_decoded_features_exactly(tiny):
    codes = torch.randint(16, (3, 2, 8), generator=torch.Generator().manual_seed(1))
    for kept, edited in ((0, 1), (1, 0)):
        other = codes.clone()
        other[:, edited] = torch.randint(16, (3, 8), generator=torch.Generator().manual_seed(2))
        assert not torch.equal(other, codes)
        a, b = tiny.decode(codes), tiny.decode(other)
        assert torch.equal(a[..., list(PART_DIMS[kept])], b[..., list(PART_DIMS[kept])]), "bit for bit"
        assert not torch.equal(a[..., list(PART_DIMS[edited])], b[..., list(PART_DIMS[edited])])
    # Lower-body joints (trajectory, legs) come only from the lower part's dims: regenerating the upper
    # body keeps them in place.
    upper_edited = codes.clone()
    upper_edited[:, 1] = (codes[:, 1] + 1) % 16
    a, b = (recover_joints(tiny.denormalise(tiny.decode(c))) for c in (codes, upper_edited))
    assert torch.equal(a[..., list(LOWER_JOINTS), :], b[..., list(LOWER_JOINTS), :])
    assert not torch.equal(a[..., list(UPPER_JOINTS), :], b[..., list(UPPER_JOINTS), :])


def test_token_mask_selects_parts(tiny):
    frames = torch.zeros(1, 34, dtype=torch.bool)
    frames[0, 5:9] = True  # frames 5..8: tokens 1 and 2
    mask = tiny.token_mask(frames, parts=["upper"])
    assert mask.shape == (1, 2, 8) and mask[0, 1].nonzero()[:, 0].tolist() == [1, 2] and not mask[0, 0].any()
    assert torch.equal(tiny.token_mask(frames)[0, 0], mask[0, 1])
    with pytest.raises(ValueError, match="part='arms'"):
        tiny.token_mask(frames, parts=["arms"])


def test_lengths_make_padding_irrelevant(tiny):
    x, y = features(seed=0), features(seed=1)
    y[:, :13] = x[:, :13]
    lengths = torch.tensor([13, 13])
    assert torch.equal(tiny.encode(x, lengths), tiny.encode(y, lengths))
    assert not torch.equal(tiny.encode(x), tiny.encode(y))


def test_ema_update_moves_codes_to_the_average_of_their_assignments():
    book = EMACodebook(4, 3)
    target = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    book.update_(target, torch.tensor([2, 2]), decay=0.99)
    assert torch.allclose(book.embedding[2], target.mean(0)), "the first assignment sets the code"
    assert torch.allclose(book.cluster_size, torch.tensor([0.0, 0.0, 0.02, 0.0]))
    untouched = book.embedding[0].clone()
    book.update_(torch.zeros(2, 3), torch.tensor([2, 2]), decay=0.5)
    # sum = 0.5 * 0.02 * mean + 0; count = 0.5 * 0.02 + 0.5 * 2
    assert torch.allclose(book.embedding[2], 0.01 * target.mean(0) / 1.01)
    assert torch.equal(book.embedding[0], untouched), "codes assigned nothing stay put"


def test_ema_updates_and_restarts_change_the_codes(tiny):
    x = features(batch=4)
    before = tiny.encode(x)
    with torch.no_grad():
        latents = tiny.encode_latents(x)  # (B, K, C, N)
    book = tiny.codebooks[1]
    flat = latents[:, 1].transpose(1, 2).reshape(-1, 8)
    book.embedding.fill_(100.0)  # every code far from the data: all outputs take code 0
    book.cluster_size.fill_(1.0)
    dead = torch.arange(16) >= 4
    assert book.restart_(flat, dead, count=0.5, generator=torch.Generator().manual_seed(0)) == 12
    assert (book.embedding[4:, None] == flat[None]).all(-1).any(-1).all(), "restarted codes sit on encoder outputs"
    assert torch.equal(book.cluster_size[4:], torch.full((12,), 0.5)) and torch.equal(
        book.cluster_size[:4], torch.ones(4)
    )
    after = tiny.encode(x)
    assert torch.equal(after[:, 0], before[:, 0]) and (after[:, 1] >= 4).all()
    assert len(after[:, 1].unique()) > 1
    # The encoder outputs move by +1: the codes they were assigned follow them, the others stay.
    codes = after[:, 1].flatten()
    used = torch.zeros(16, dtype=torch.bool).index_fill_(0, codes, True)
    previous = book.embedding.clone()
    book.update_(flat + 1.0, codes, decay=0.9)
    for i in used.nonzero()[:, 0]:
        assigned = flat[codes == i] + 1.0
        expected = (0.9 * 0.5 * previous[i] + 0.1 * assigned.sum(0)) / (0.9 * 0.5 + 0.1 * len(assigned))
        assert torch.allclose(book.embedding[i], expected, atol=1e-6)
    assert torch.equal(book.embedding[~used], previous[~used])


def test_save_load_round_trip(tiny, tmp_path):
    mean, std = torch.randn(FEATURE_DIM), torch.rand(FEATURE_DIM) + 0.5
    tiny.set_statistics_(mean, std)
    tiny.codebooks[0].update_(torch.randn(10, 8), torch.arange(10), decay=0.9)
    tiny.save_pretrained(tmp_path / "vq")
    loaded = MotionVQ.from_pretrained(tmp_path / "vq")
    assert loaded.config == tiny.config and loaded.spec == tiny.spec
    for name, value in tiny.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    assert torch.equal(loaded.mean, mean) and torch.equal(loaded.std, std)
    x = features()
    assert torch.equal(loaded.encode(x), tiny.encode(x))
    assert torch.allclose(loaded.denormalise(loaded.normalise(x)), x, atol=1e-5)
    with pytest.raises(FileExistsError, match="overwrite"):
        tiny.save_pretrained(tmp_path / "vq")


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.randn(2, 16, 262), "expected \\[..., F, 263\\]"),
        (torch.randn(16, FEATURE_DIM), "expected \\[B, T, 263\\]"),
        (torch.randn(2, 3, FEATURE_DIM), "got 3 frames; expected at least 4 frames"),
        (torch.full((1, 8, FEATURE_DIM), float("nan")), "NaN"),
        (torch.zeros(1, 8, FEATURE_DIM, dtype=torch.long), "expected a float tensor"),
    ],
)
def test_bad_features_are_rejected(tiny, bad, match):
    with pytest.raises(ValueError, match=match):
        tiny.encode(bad)


def test_bad_arguments_are_rejected(tiny):
    with pytest.raises(ValueError, match="lengths: got \\[0, 8\\]"):
        tiny.encode(features(frames=8), torch.tensor([0, 8]))
    with pytest.raises(ValueError, match="out of range: codebook 1"):
        tiny.decode(torch.full((1, 2, 4), 3).index_fill_(1, torch.tensor([1]), 16))
    with pytest.raises(ValueError, match="does not match the spec"):
        tiny.decode(torch.zeros(1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="codebook_size=1"):
        MotionVQ(codebook_size=1)
    with pytest.raises(ValueError, match="max_frames=2"):
        MotionVQ(max_frames=2)
    with pytest.raises(ValueError, match="num_frames=3"):
        tiny.spec_for_frames(3)
    with pytest.raises(ValueError, match="std: entry 0 is not positive"):
        tiny.set_statistics_(torch.zeros(FEATURE_DIM), torch.zeros(FEATURE_DIM))
