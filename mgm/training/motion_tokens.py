"""Motion tokens for the masked motion model: clips of different lengths, batched by length.

Each clip is encoded once by a MotionVQ (whole, at its own length) into codes [2, N_i] and cached
(codes concatenated, lengths, labels; captions in the file's metadata). A training batch is
``batch_size`` clips cropped to one token length N, drawn per batch uniformly from
[``min_tokens``, ``max_tokens``] among the lengths enough clips reach (``LengthBatches``), so the
model sees every length it will be asked for without padding. Batches:
``{"codes": LongTensor[B, 2, N], "captions": list[str], "labels": LongTensor[B]}``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from mgm.checks import check_int, check_number
from mgm.data.motions import MotionsDataset
from mgm.data.pretokenize import codes_fingerprint
from mgm.io import atomic_write
from mgm.parallel import Ranks
from mgm.seeds import mix_seed
from mgm.tokenizers.motion_vq import MotionVQ
from mgm.tokens import TokenSpec
from mgm.training.resume import ResumableData, ResumableLoader

log = logging.getLogger(__name__)


def pretokenize_motions(tokenizer: MotionVQ, dataset: Dataset, path, source: str,
                        ranks: Ranks | None = None) -> tuple[list, list, torch.Tensor]:  # fmt: skip
    """Encode every clip of ``dataset`` (items with normalised ``motion`` [F, 263], ``caption``,
    ``label``) into ``path``, or reuse it when the tokenizer and source match. Across ``ranks``
    (default the current process group) each encodes its contiguous share, the shares are gathered
    and rank 0 writes the one file. Returns (codes: list of [2, N_i], captions, labels [M])."""
    path = Path(path)
    fingerprint = codes_fingerprint(tokenizer, source)
    if path.is_file():
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
            if all(meta.get(k) == v for k, v in fingerprint.items()):
                log.info("reusing motion codes in %s", path)
                codes, lengths, labels = (f.get_tensor(name) for name in ("codes", "lengths", "labels"))
                return list(codes.split(lengths.tolist(), dim=1)), json.loads(meta["captions"]), labels
    ranks = Ranks.current() if ranks is None else ranks
    device = next(tokenizer.parameters()).device
    codes, captions, labels = [], [], []
    with torch.no_grad():
        for i in ranks.blocks(len(dataset), 1):
            item = dataset[i]
            frames = item["motion"].shape[0] // tokenizer.downsample * tokenizer.downsample
            codes.append(tokenizer.encode(item["motion"][None, :frames].to(device))[0].cpu())
            captions.append(item["caption"])
            labels.append(int(item.get("label", -1)))
    shares = ranks.gather((codes, captions, labels))  # rank order = dataset order
    codes, captions, labels = ([x for share in shares for x in share[part]] for part in range(3))
    tensors = {
        "codes": torch.cat(codes, 1).contiguous(),
        "lengths": torch.tensor([c.shape[1] for c in codes]),
        "labels": torch.tensor(labels),
    }
    metadata = {**fingerprint, "captions": json.dumps(captions)}
    if ranks.is_main:
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata), overwrite=True)
    ranks.barrier()
    return codes, captions, tensors["labels"]


class MotionCodes(Dataset):
    """Clips' codes; an item key is (clip index, token length N[, seed]): a random N-token window
    of it, drawn from a generator with that seed (torch's global one without)."""

    def __init__(self, codes: list[torch.Tensor], captions: list[str], labels: torch.Tensor):
        self.codes, self.captions, self.labels = codes, captions, labels
        self.lengths = torch.tensor([c.shape[1] for c in codes])

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, key: tuple[int, int] | tuple[int, int, int]) -> dict:
        index, n = key[:2]
        generator = torch.Generator().manual_seed(key[2]) if len(key) > 2 else None
        codes = self.codes[index]
        start = int(torch.randint(codes.shape[1] - n + 1, (), generator=generator))
        return {"codes": codes[:, start : start + n], "captions": self.captions[index], "labels": self.labels[index]}


class LengthBatches(DistributedSampler):
    """Batches of (clip, N, seed) keys with one N per batch (see the module doc): ``num_batches``
    per epoch, dealt round-robin to ``num_replicas`` ranks (each gets ``num_batches //
    num_replicas``, at least one). An epoch's batches are a function of (seed, epoch) alone, and
    ``skip_batches`` of this rank's share of ``epoch`` are left out (a resumed epoch; ``len()``
    stays the whole share), as for ``mgm.training.resume.EpochSampler``. It is the loader's
    sampler, one batch per item (``BatchedItems``), and a DistributedSampler, so that Lightning
    leaves it as it is under DDP."""

    def __init__(
        self,
        lengths: torch.Tensor,
        batch_size: int,
        min_tokens: int,
        max_tokens: int,
        num_batches: int,
        seed: int = 0,
        epoch: int = 0,
        skip_batches: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        # DistributedSampler.__init__ is not called: it wants a process group.
        self.lengths, self.batch_size = lengths, batch_size
        self.seed, self.epoch, self.skip_batches = seed, epoch, skip_batches
        self.num_replicas, self.rank = num_replicas, rank
        self.num_batches = max(1, num_batches // num_replicas)  # this rank's
        enough = min(batch_size, 8, len(lengths))  # a length is drawn when this many clips reach it
        reachable = [n for n in range(min_tokens, max_tokens + 1) if int((lengths >= n).sum()) >= enough]
        if not reachable:
            raise ValueError(
                f"min_tokens={min_tokens}, max_tokens={max_tokens}: no token length that {enough} clips reach "
                f"(clip lengths {int(lengths.min())}..{int(lengths.max())} tokens)"
            )
        self.choices = reachable

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.skip_batches = epoch, 0

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        for b in range(self.num_batches * self.num_replicas):
            n = self.choices[int(torch.randint(len(self.choices), (), generator=generator))]
            eligible = (self.lengths >= n).nonzero()[:, 0]
            picks = eligible[torch.randint(len(eligible), (self.batch_size,), generator=generator)]
            if b % self.num_replicas == self.rank and b // self.num_replicas >= self.skip_batches:
                yield [(int(i), n, mix_seed(self.seed, self.epoch, b, j)) for j, i in enumerate(picks)]


class BatchedItems(Dataset):
    """A dataset read a batch at a time: a list of keys -> the collated batch of their items."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, keys: list) -> dict:
        return default_collate([self.dataset[key] for key in keys])


class MotionTokensDataModule(ResumableData):
    """Motions7 clips (``num_clips``, ``seed``) encoded by the MotionVQ saved in ``tokenizer`` and
    cached in ``cache``; a seeded train/val split; length-bucketed batches."""

    def __init__(
        self,
        tokenizer: str,
        cache: str,
        num_clips: int = 2000,
        seed: int = 0,
        batch_size: int = 64,
        min_tokens: int = 10,
        max_tokens: int = 30,
        batches_per_epoch: int = 200,
        val_fraction: float = 0.05,
    ):
        super().__init__()
        for name, value in (
            ("num_clips", num_clips),
            ("batch_size", batch_size),
            ("batches_per_epoch", batches_per_epoch),
        ):
            check_int(value, name)
        check_int(seed, "seed", minimum=0)
        check_number(val_fraction, "val_fraction", above=0, maximum=0.5)
        check_int(min_tokens, "min_tokens")
        if check_int(max_tokens, "max_tokens") < min_tokens:
            raise ValueError(f"max_tokens={max_tokens}: expected at least min_tokens={min_tokens}")
        self.tokenizer_dir, self.cache = tokenizer, cache
        self.num_clips, self.seed, self.batch_size = num_clips, seed, batch_size
        self.min_tokens, self.max_tokens, self.batches_per_epoch = min_tokens, max_tokens, batches_per_epoch
        self.val_fraction = val_fraction
        self.train_set = self.val_set = None

    def describe(self) -> str:
        return f"motions7(num={self.num_clips}, seed={self.seed})"

    def prepare_data(self) -> None:
        """Encode into ``cache`` once. In one process, here; under several ranks (DDP), ``setup``
        encodes on all of them, each its share (``pretokenize_motions``)."""
        if Ranks.current().world_size == 1:
            self._codes()

    def _codes(self) -> tuple[list, list, torch.Tensor]:
        tokenizer = MotionVQ.from_pretrained(self.tokenizer_dir)
        self.spec = TokenSpec(tokenizer.spec.codebook_sizes, (self.max_tokens,))  # the model's longest clip
        clips = MotionsDataset(self.num_clips, self.seed, mean=tokenizer.mean, std=tokenizer.std)
        return pretokenize_motions(tokenizer, clips, self.cache, self.describe())

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        codes, captions, labels = self._codes()
        order = torch.randperm(len(codes), generator=torch.Generator().manual_seed(self.seed)).tolist()
        num_val = max(1, round(len(codes) * self.val_fraction))
        pick = lambda idx: MotionCodes([codes[i] for i in idx], [captions[i] for i in idx], labels[idx])
        self.val_set, self.train_set = pick(order[:num_val]), pick(order[num_val:])

    def _loader(self, data: MotionCodes, num_batches: int, epoch: int = 0, skip: int = 0) -> DataLoader:
        num_replicas, rank = self.ranks()
        batches = LengthBatches(
            data.lengths,
            self.batch_size,
            self.min_tokens,
            self.max_tokens,
            num_batches,
            self.seed,
            epoch,
            skip,
            num_replicas,
            rank,
        )
        return ResumableLoader(BatchedItems(data), batch_size=None, sampler=batches)

    def train_dataloader(self) -> DataLoader:
        per_rank = max(1, self.batches_per_epoch // self.ranks()[0])  # as LengthBatches deals them
        return self._loader(self.train_set, self.batches_per_epoch, *self.start(per_rank))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, 4)
