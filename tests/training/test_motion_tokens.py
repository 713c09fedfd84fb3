import pytest
import torch

from mgm.data.motions import MotionsDataset
from mgm.tokenizers import MotionVQ
from mgm.training.motion_tokens import LengthBatches, MotionCodes, pretokenize_motions


def test_length_batches_use_one_length_each_and_only_clips_that_reach_it():
    torch.manual_seed(0)
    lengths = torch.tensor([10, 12, 15, 20, 30, 30, 25, 11, 18, 22])
    codes = [torch.arange(n).expand(2, n) for n in lengths.tolist()]
    data = MotionCodes(codes, [f"c{i}" for i in range(10)], torch.arange(10))
    batches = list(LengthBatches(lengths, batch_size=4, min_tokens=10, max_tokens=30, num_batches=50))
    seen = set()
    for keys in batches:
        (n,) = {n for _, n, _ in keys}
        seen.add(n)
        assert all(lengths[i] >= n for i, _, _ in keys)
        for key in keys:
            item = data[key]
            window = item["codes"][0]
            assert window.shape == (n,) and torch.equal(window, torch.arange(window[0], window[0] + n))
    assert len(seen) > 5 and max(seen) <= 25  # 30 is reached by only 2 clips (< 4): never drawn
    with pytest.raises(ValueError, match="max_tokens=40"):
        LengthBatches(lengths, 4, min_tokens=35, max_tokens=40, num_batches=1)


def test_length_batches_are_a_function_of_seed_and_epoch_and_resume_mid_epoch():
    lengths = torch.tensor([10, 12, 15, 20, 30, 30, 25, 11, 18, 22])
    epoch = lambda e, skip=0: list(LengthBatches(lengths, 4, 10, 30, 20, seed=3, epoch=e, skip_batches=skip))
    torch.manual_seed(1)
    first = epoch(2)
    torch.manual_seed(2)  # the global generator plays no part
    assert epoch(2) == first and epoch(3) != first
    assert epoch(2, skip=7) == first[7:]
    sampler = LengthBatches(lengths, 4, 10, 30, 20, seed=3, epoch=2, skip_batches=7)
    sampler.set_epoch(3)  # a new epoch is whole
    assert list(sampler) == epoch(3)


def test_length_batches_deal_an_epoch_to_ranks_without_overlap():
    lengths = torch.tensor([10, 12, 15, 20, 30, 30, 25, 11, 18, 22])
    whole = list(LengthBatches(lengths, 4, 10, 30, 20, seed=3, epoch=1))
    shares = [list(LengthBatches(lengths, 4, 10, 30, 20, seed=3, epoch=1, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(s) for s in shares] == [6, 6, 6]  # 20 // 3 each; the remainder is left out
    for rank, share in enumerate(shares):  # rank r's batches are batches r, r + 3, ... of the one epoch
        assert share == whole[rank:18:3]
    resumed = LengthBatches(lengths, 4, 10, 30, 20, seed=3, epoch=1, skip_batches=4, num_replicas=3, rank=1)
    assert list(resumed) == shares[1][4:] and len(resumed) == 6


def test_pretokenized_motions_are_cached_and_reused(tmp_path):
    torch.manual_seed(0)
    tokenizer = MotionVQ(codebook_size=16, code_dim=8, width=16, depth=1).eval()
    clips = MotionsDataset(6, seed=1, mean=tokenizer.mean, std=tokenizer.std)
    codes, captions, labels = pretokenize_motions(tokenizer, clips, tmp_path / "c.safetensors", "motions7(6, 1)")
    assert [c.shape[1] for c in codes] == [clips[i]["motion"].shape[0] // 4 for i in range(6)]
    assert captions == [clips[i]["caption"] for i in range(6)] and labels.tolist() == clips.labels.tolist()
    stamp = (tmp_path / "c.safetensors").stat().st_mtime_ns
    again = pretokenize_motions(tokenizer, clips, tmp_path / "c.safetensors", "motions7(6, 1)")
    assert (tmp_path / "c.safetensors").stat().st_mtime_ns == stamp
    assert all(torch.equal(a, b) for a, b in zip(again[0], codes)) and again[1] == captions
