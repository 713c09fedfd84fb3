"""Part-aware motion tokenizer: two 1-D convolutional VQ-VAEs over HumanML3D's 263-dim features,
one for the lower body and one for the upper body, each with its own EMA codebook.

Codebook k quantises body part ``PART_NAMES[k]``: ``codes[B, 2, N]``, N = T // downsample token
positions, downsample = 2 ** down_t frames per token (4 by default: 196 frames -> 49 tokens).
Each part has its own encoder (conv stem, ``down_t`` stride-2 convs each followed by ``depth``
dilated residual blocks, the T2M-GPT family of motion VQ-VAEs) and its own decoder (the mirror
image, nearest-neighbour upsampling), and a decoder sees only its own part's tokens. So the
decoded dims of one part are a function of that part's codes alone: keep codebook 0 and
regenerate codebook 1, and the lower body (root trajectory included) comes back bit for bit.
That is the body-part editing guarantee (``token_mask(..., parts=["upper"])``).

The part split (``PART_DIMS``, every one of the 263 dims in exactly one part):

- lower: the root blocks (yaw velocity, linear velocity, height), the RIC, rotation and local
  velocity dims of the pelvis and leg joints (``LOWER_JOINTS``: hips, knees, ankles, feet; the
  pelvis only has local velocity dims), and the 4 foot contacts: 107 dims;
- upper: the same three per-joint blocks of the spine, neck, head, collars, shoulders, elbows and
  wrists (``UPPER_JOINTS``): 156 dims.

Features in and out are normalised (``(x - mean) / std``); the statistics travel with the
tokenizer as buffers (``set_statistics_``, ``normalise``, ``denormalise``), so a pipeline can take
and give raw features. Lengths: ``encode`` keeps the first T - T % downsample frames (the last
few frames of a clip that is not a whole number of tokens long are dropped, as T2M-GPT and MoMask
crop HumanML3D clips) and rejects clips shorter than one token.

Codebooks (``EMACodebook``) are not trained by gradients: ``MotionVQTraining`` moves each code to
the exponential moving average of the encoder outputs assigned to it and restarts dead codes on
encoder outputs of the batch; a fresh codebook counts every code as dead, so the first training
batch fills it.

Dimension legend: B batch, T frames, D = 263 feature dims, K = 2 codebooks (body parts),
N = T // downsample token positions, C code dimension, M latent vectors (B * N, flattened).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from mgm.data.humanml3d import denormalise, normalise
from mgm.data.motion_features import (
    FEATURE_DIM,
    FOOT_CONTACTS,
    LOCAL_VELOCITY,
    RIC,
    ROOT_HEIGHT,
    ROOT_LINEAR_VELOCITY,
    ROOT_YAW_VELOCITY,
    ROTATIONS,
    check_features,
)
from mgm.data.skeleton import JOINT_INDEX, JOINT_NAMES
from mgm.io import PretrainedMixin
from mgm.tokens import TokenSpec

PART_NAMES = ("lower", "upper")
_LOWER_NAMES = (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_foot", "right_foot",
)  # fmt: skip
LOWER_JOINTS = tuple(sorted(JOINT_INDEX[name] for name in _LOWER_NAMES))
UPPER_JOINTS = tuple(sorted(set(range(len(JOINT_NAMES))) - set(LOWER_JOINTS)))


def _joint_dims(joints: Iterable[int], block: slice, per_joint: int, first_joint: int) -> list[int]:
    """The dims of ``block`` that belong to ``joints``; the block holds joints first_joint..21, per_joint dims each."""
    return [
        block.start + per_joint * (j - first_joint) + i for j in joints if j >= first_joint for i in range(per_joint)
    ]


def _part_dims(joints: tuple[int, ...], root: bool) -> tuple[int, ...]:
    dims = _joint_dims(joints, RIC, 3, 1) + _joint_dims(joints, ROTATIONS, 6, 1)
    dims += _joint_dims(joints, LOCAL_VELOCITY, 3, 0)
    if root:
        for block in (ROOT_YAW_VELOCITY, ROOT_LINEAR_VELOCITY, ROOT_HEIGHT, FOOT_CONTACTS):
            dims += range(block.start, block.stop)
    return tuple(sorted(dims))


# Feature dims of each part, ascending: (lower body and root, upper body).
PART_DIMS = (_part_dims(LOWER_JOINTS, root=True), _part_dims(UPPER_JOINTS, root=False))


class ResidualConvBlock(nn.Module):
    """x + conv1x1(relu(dilated conv3(relu(x)))) over [B, W, T]; keeps the length."""

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.project = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(F.relu(self.conv(F.relu(x))))


def part_encoder(in_dims: int, width: int, code_dim: int, depth: int, down_t: int, dilation_growth: int) -> nn.Module:
    """[B, in_dims, T] -> [B, code_dim, T / 2 ** down_t]: stem, then per level a stride-2 conv and
    ``depth`` residual blocks of dilation 1, g, g^2, ... (g = ``dilation_growth``)."""
    layers: list[nn.Module] = [nn.Conv1d(in_dims, width, 3, padding=1), nn.ReLU()]
    for _ in range(down_t):
        layers.append(nn.Conv1d(width, width, 4, stride=2, padding=1))
        layers += [ResidualConvBlock(width, dilation_growth**i) for i in range(depth)]
    layers.append(nn.Conv1d(width, code_dim, 3, padding=1))
    return nn.Sequential(*layers)


def part_decoder(code_dim: int, width: int, out_dims: int, depth: int, down_t: int, dilation_growth: int) -> nn.Module:
    """[B, code_dim, N] -> [B, out_dims, N * 2 ** down_t]: the encoder's mirror (dilations in reverse
    order, then a nearest-neighbour x2 upsampling and a conv per level)."""
    layers: list[nn.Module] = [nn.Conv1d(code_dim, width, 3, padding=1), nn.ReLU()]
    for _ in range(down_t):
        layers += [ResidualConvBlock(width, dilation_growth**i) for i in reversed(range(depth))]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv1d(width, width, 3, padding=1)]
    layers += [nn.Conv1d(width, width, 3, padding=1), nn.ReLU(), nn.Conv1d(width, out_dims, 3, padding=1)]
    return nn.Sequential(*layers)


class EMACodebook(nn.Module):
    """``size`` codes of dimension ``dim`` that follow exponential moving averages of their assignments.

    Buffers: ``embedding`` [size, C] (the codes), ``cluster_size`` [size] (EMA count of the latents
    assigned per update) and ``embed_sum`` [size, C] (EMA sum of them); ``embedding`` is
    ``embed_sum / cluster_size`` wherever a code has been assigned. All three are saved with the
    tokenizer, so training can resume and fine-tune. A fresh codebook has every count at zero.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.size, self.dim = size, dim
        self.register_buffer("embedding", torch.randn(size, dim))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed_sum", torch.zeros(size, dim))

    def nearest(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [M, C] -> index of the nearest code (Euclidean), LongTensor[M]."""
        return torch.cdist(latents, self.embedding).argmin(-1)

    @torch.no_grad()
    def update_(
        self,
        latents: torch.Tensor,
        codes: torch.Tensor,
        decay: float,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """One EMA step from the assignments ``codes`` [M] of ``latents`` [M, C] (in place).

        count <- decay * count + (1 - decay) * n_i, sum <- decay * sum + (1 - decay) * (sum of the
        latents assigned to code i), code <- sum / count for the codes assigned anything. The
        others keep their place (their count and sum decay alike) until they are restarted.
        ``reduce`` (in place) combines the step's counts and sums with other processes' first
        (multi-process training passes the mean over ranks, so every rank takes the same step).
        """
        latents = latents.detach().to(self.embed_sum.dtype)
        counts = torch.bincount(codes, minlength=self.size).to(latents.dtype)
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, latents)
        if reduce is not None:
            reduce(counts)
            reduce(sums)
        self.cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        self.embed_sum.mul_(decay).add_(sums, alpha=1 - decay)
        assigned = counts > 0  # so cluster_size > 0 there
        self.embedding[assigned] = self.embed_sum[assigned] / self.cluster_size[assigned, None]

    @torch.no_grad()
    def restart_(
        self, latents: torch.Tensor, dead: torch.Tensor, count: float, generator: torch.Generator | None = None
    ) -> int:
        """Move the codes where ``dead`` [size] is True onto random rows of ``latents`` [M, C]; returns how many.

        Rows are drawn uniformly without replacement (with replacement when there are fewer rows
        than dead codes) from ``generator`` (CPU; torch's global one by default). A restarted code
        gets the EMA count ``count`` with a matching sum (``embed_sum = code * count``), so the next
        ``update_`` averages from where it was put.
        """
        dead_index = dead.nonzero()[:, 0]
        num, rows = len(dead_index), len(latents)
        if num == 0 or rows == 0:
            return 0
        if num <= rows:
            picks = torch.randperm(rows, generator=generator)[:num]
        else:
            picks = torch.randint(rows, (num,), generator=generator)
        chosen = latents.detach()[picks.to(latents.device)].to(self.embedding.dtype)
        self.embedding[dead_index] = chosen
        self.embed_sum[dead_index] = chosen * count
        self.cluster_size[dead_index] = count
        return num

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"


class MotionVQ(PretrainedMixin, nn.Module):
    """The part-aware motion VQ-VAE; the constructor builds a randomly initialised one.

    Args:
        codebook_size: codes per codebook (both parts).
        code_dim: dimension C of the codes and of the encoders' outputs.
        width: channels of the convolutions (both parts).
        depth: residual blocks per resolution level.
        down_t: stride-2 levels; downsample = 2 ** down_t frames per token.
        dilation_growth: dilation factor between consecutive residual blocks (1, g, g^2, ...).
        max_frames: the clip length ``spec`` describes (196 frames, HumanML3D's longest, -> 49
            tokens); ``encode`` and ``decode`` take any length, ``spec_for_frames`` gives its spec.
    """

    def __init__(
        self,
        codebook_size: int = 512,
        code_dim: int = 256,
        width: int = 256,
        depth: int = 3,
        down_t: int = 2,
        dilation_growth: int = 3,
        max_frames: int = 196,
    ):
        super().__init__()
        for name, value, low in (
            ("codebook_size", codebook_size, 2), ("code_dim", code_dim, 1), ("width", width, 1),
            ("depth", depth, 0), ("down_t", down_t, 0), ("dilation_growth", dilation_growth, 1),
        ):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r}: expected a whole number >= {low}")
        self.downsample = 2**down_t  # frames per token
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < self.downsample:
            raise ValueError(f"max_frames={max_frames!r}: expected a whole number of frames >= {self.downsample}")
        self.config = dict(
            codebook_size=codebook_size, code_dim=code_dim, width=width, depth=depth, down_t=down_t,
            dilation_growth=dilation_growth, max_frames=max_frames,
        )  # fmt: skip
        self.codebook_size, self.max_frames = codebook_size, max_frames
        self.num_codebooks = len(PART_NAMES)
        self.part_names = PART_NAMES
        self.part_dims = PART_DIMS
        build = dict(width=width, depth=depth, down_t=down_t, dilation_growth=dilation_growth)
        self.encoders = nn.ModuleList(part_encoder(len(dims), code_dim=code_dim, **build) for dims in PART_DIMS)
        self.decoders = nn.ModuleList(part_decoder(code_dim, out_dims=len(dims), **build) for dims in PART_DIMS)
        self.codebooks = nn.ModuleList(EMACodebook(codebook_size, code_dim) for _ in PART_DIMS)
        for k, dims in enumerate(PART_DIMS):
            self.register_buffer(f"_dims_{k}", torch.tensor(dims), persistent=False)
        # Concatenating the parts' outputs gives the dims in PART_DIMS order; this gather restores 0..262.
        order = torch.tensor(PART_DIMS[0] + PART_DIMS[1])
        self.register_buffer("_unpermute", order.argsort(), persistent=False)
        self.register_buffer("mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("std", torch.ones(FEATURE_DIM))
        self.spec = self.spec_for_frames(max_frames)

    # -- tokens ---------------------------------------------------------------------------------

    def tokens_for_frames(self, num_frames: int) -> int:
        """Token positions N of a clip of ``num_frames`` frames: num_frames // downsample."""
        return int(num_frames) // self.downsample

    def frames_for_tokens(self, num_tokens: int) -> int:
        """Frames that ``num_tokens`` token positions decode to: num_tokens * downsample."""
        return int(num_tokens) * self.downsample

    def spec_for_frames(self, num_frames: int) -> TokenSpec:
        """The TokenSpec of a ``num_frames``-frame clip: K = 2 codebooks, shape (num_frames // downsample,)."""
        if int(num_frames) < self.downsample:
            raise ValueError(f"num_frames={num_frames}: expected at least {self.downsample} frames (one token)")
        return TokenSpec((self.codebook_size,) * self.num_codebooks, (self.tokens_for_frames(num_frames),))

    def part_index(self, part: int | str) -> int:
        """The codebook of ``part`` (a name in PART_NAMES or an index)."""
        if isinstance(part, str) and part in self.part_names:
            return self.part_names.index(part)
        if isinstance(part, int) and not isinstance(part, bool) and 0 <= part < self.num_codebooks:
            return part
        raise ValueError(f"part={part!r}: expected one of {self.part_names} or an index below {self.num_codebooks}")

    def token_mask(self, frame_mask: torch.Tensor, parts: Iterable[int | str] | None = None) -> torch.Tensor:
        """Frame mask BoolTensor[B, T] (True = to regenerate) -> token mask BoolTensor[B, 2, T // downsample].

        A token is selected when any of its ``downsample`` frames is (frames past the last whole
        token are dropped, as ``encode`` drops them), in the codebooks of ``parts`` only (default
        both): ``parts=["upper"]`` regenerates the arms and torso and keeps the legs and trajectory.
        """
        if not isinstance(frame_mask, torch.Tensor) or frame_mask.dim() != 2 or frame_mask.shape[1] < self.downsample:
            got = tuple(frame_mask.shape) if isinstance(frame_mask, torch.Tensor) else type(frame_mask).__name__
            raise ValueError(f"frame_mask: got {got}; expected [B, T] with T >= {self.downsample} frames")
        chosen = torch.zeros(self.num_codebooks, dtype=torch.bool, device=frame_mask.device)
        chosen[[self.part_index(p) for p in (self.part_names if parts is None else parts)]] = True
        n = self.tokens_for_frames(frame_mask.shape[1])
        tokens = frame_mask[:, : n * self.downsample].reshape(len(frame_mask), n, self.downsample).any(-1)
        return tokens[:, None, :] & chosen[None, :, None]

    # -- normalisation --------------------------------------------------------------------------

    @torch.no_grad()
    def set_statistics_(self, mean: torch.Tensor, std: torch.Tensor) -> MotionVQ:
        """Store the normalisation statistics (mean [263], std [263] > 0) of the data the tokenizer is trained on."""
        for name, value in (("mean", mean), ("std", std)):
            value = torch.as_tensor(value)
            if value.shape != (FEATURE_DIM,) or not torch.isfinite(value).all():
                raise ValueError(f"{name}: got shape {tuple(value.shape)}; expected {FEATURE_DIM} finite values")
        if (torch.as_tensor(std) <= 0).any():
            raise ValueError(f"std: entry {int((torch.as_tensor(std) <= 0).nonzero()[0])} is not positive")
        self.mean.copy_(torch.as_tensor(mean))
        self.std.copy_(torch.as_tensor(std))
        return self

    def normalise(self, features: torch.Tensor) -> torch.Tensor:
        """Raw features [..., 263] -> the normalised features ``encode`` takes."""
        return normalise(features, self.mean, self.std)

    def denormalise(self, features: torch.Tensor) -> torch.Tensor:
        """Normalised features [..., 263] (what ``decode`` gives) -> raw features (``recover_joints`` reads these)."""
        return denormalise(features, self.mean, self.std)

    # -- features in ----------------------------------------------------------------------------

    def check_features(self, features: torch.Tensor, lengths: torch.Tensor | None = None, name: str = "features"):
        """Raise ValueError unless ``features`` is a finite FloatTensor[B, T, 263] with T >= downsample
        and ``lengths`` (optional) holds B frame counts in [1, T]."""
        check_features(features, name)
        if features.dim() != 3 or features.shape[0] == 0:
            raise ValueError(f"{name}: got shape {tuple(features.shape)}; expected [B, T, {FEATURE_DIM}] with B >= 1")
        if features.shape[1] < self.downsample:
            raise ValueError(
                f"{name}: got {features.shape[1]} frames; expected at least {self.downsample} frames (one token)"
            )
        if lengths is not None:
            lengths = torch.as_tensor(lengths)
            if lengths.dtype.is_floating_point or lengths.shape != (features.shape[0],):
                raise ValueError(
                    f"lengths: got {lengths.dtype} of shape {tuple(lengths.shape)}; expected {features.shape[0]} "
                    "whole frame counts"
                )
            if ((lengths < 1) | (lengths > features.shape[1])).any():
                raise ValueError(f"lengths: got {lengths.tolist()}; expected frame counts in [1, {features.shape[1]}]")

    def prepare(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Check ``features`` [B, T, 263] and return [B, T', 263], T' = T - T % downsample, with the frames
        at and past ``lengths[b]`` set to zero (the mean pose), as padding is in training."""
        self.check_features(features, lengths)
        features = features[:, : self.frames_for_tokens(self.tokens_for_frames(features.shape[1]))]
        if lengths is not None:
            frames = torch.arange(features.shape[1], device=features.device)
            real = frames[None, :] < torch.as_tensor(lengths, device=features.device)[:, None]
            features = features * real[..., None]
        return features

    # -- pieces for training (gradients flow; no checks) ----------------------------------------

    def encode_latents(self, features: torch.Tensor) -> torch.Tensor:
        """Normalised features [B, T, 263] (T a multiple of downsample) -> encoder outputs [B, K, C, N]."""
        channels = features.transpose(1, 2)  # (B, D, T)
        parts = [getattr(self, f"_dims_{k}") for k in range(self.num_codebooks)]
        return torch.stack([enc(channels.index_select(1, dims)) for enc, dims in zip(self.encoders, parts)], 1)

    def nearest_codes(self, latents: torch.Tensor) -> torch.Tensor:
        """Encoder outputs [B, K, C, N] -> index of each one's nearest code in its part's codebook, [B, K, N]."""
        b, _, c, n = latents.shape
        return torch.stack(
            [
                book.nearest(latents[:, k].transpose(1, 2).reshape(-1, c)).view(b, n)
                for k, book in enumerate(self.codebooks)
            ],
            1,
        )

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, N] -> quantised latents [B, K, C, N]."""
        return torch.stack([book.embedding[codes[:, k]].transpose(1, 2) for k, book in enumerate(self.codebooks)], 1)

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        """Quantised latents [B, K, C, N] -> normalised features [B, N * downsample, 263]; part k's dims
        come from part k's latents only."""
        parts = torch.cat([dec(quantized[:, k]) for k, dec in enumerate(self.decoders)], 1)  # (B, D, T), parts' order
        return parts.index_select(1, self._unpermute).transpose(1, 2)

    # -- the tokenizer contract -----------------------------------------------------------------

    @torch.no_grad()
    def encode(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised features FloatTensor[B, T, 263] -> codes LongTensor[B, 2, T // downsample].

        The last T % downsample frames are dropped. ``lengths`` [B] (frames per clip of a padded
        batch): frames past a clip's length are zeroed before encoding, so the padding's content
        does not matter; token positions from ceil(length / downsample) on encode padding.
        """
        return self.nearest_codes(self.encode_latents(self.prepare(features, lengths)))

    def check_codes(self, codes: torch.Tensor, name: str = "codes") -> None:
        """Raise ValueError unless ``codes`` is an integer tensor [B, 2, N] (any N >= 1) in [0, codebook_size)."""
        if not isinstance(codes, torch.Tensor) or codes.dim() != 3 or codes.shape[2] == 0:
            self.spec.check_codes(codes, name)  # raises, naming what it got
        TokenSpec(self.spec.codebook_sizes, (codes.shape[2],)).check_codes(codes, name)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes LongTensor[B, 2, N] -> normalised features FloatTensor[B, N * downsample, 263]
        (``denormalise`` them for ``recover_joints``)."""
        self.check_codes(codes)
        return self.decode_latents(self.lookup(codes.long()))

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"parts={self.part_names}, dims={tuple(len(d) for d in self.part_dims)}, "
            f"codebook_size={c['codebook_size']}, code_dim={c['code_dim']}, downsample={self.downsample}, "
            f"max_frames={c['max_frames']}"
        )
