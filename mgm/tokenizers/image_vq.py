"""Image tokenizer on diffusers' VQModel (the VQ-GAN class of aMUSEd and latent diffusion).

Pixel convention: mgm's image API takes and returns FloatTensor[B, 3, H, W] in [0, 1]; the
VQModel works in [-1, 1] and the conversion happens here only. Codes are row-major over the
latent grid: ``codes[B, 1, h * w]`` with h = H / downsample.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from diffusers import VQModel
from torch import nn

from mgm.checks import check_int
from mgm.hub import HubMixin
from mgm.io import (
    atomic_folder,
    check_config,
    check_folder,
    check_manifest,
    check_weights,
    expected_state,
    load_json,
    load_tensors,
    save_json,
)
from mgm.tokens import TokenSpec

VQ_WEIGHTS = "diffusion_pytorch_model.safetensors"  # diffusers' weights file name
IMAGE_CONFIG = "image_vq.json"  # mgm's own settings beside diffusers' config.json


def cut_tiles(images: torch.Tensor, tiles: int) -> torch.Tensor:
    """images [F, C, S, S] -> [F * n * n, C, S / n, S / n]: each image's n x n tiles in raster order."""
    if tiles == 1:
        return images
    f, c, size = images.shape[0], images.shape[1], images.shape[-1]
    if size % tiles:
        raise ValueError(f"tiles={tiles}: images of {size} pixels do not split into {tiles} x {tiles} equal tiles")
    s = size // tiles
    grid = images.reshape(f, c, tiles, s, tiles, s).permute(0, 2, 4, 1, 3, 5)  # (F, n, n, C, s, s)
    return grid.reshape(-1, c, s, s)


def join_tiles(tiles: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of ``cut_tiles``: [F * n * n, C, s, s] -> images [F, C, n * s, n * s]."""
    if n == 1:
        return tiles
    c, s = tiles.shape[1], tiles.shape[-1]
    grid = tiles.reshape(-1, n, n, c, s, s).permute(0, 3, 1, 4, 2, 5)  # (F, C, n, s, n, s)
    return grid.reshape(-1, c, n * s, n * s)


class ImageVQ(HubMixin, nn.Module):
    """Wraps a diffusers ``VQModel``; ``image_size`` is its ``sample_size`` unless given.

    ``encoder_tiles=n`` (default 1) runs the encoder on each of the image's n x n tiles alone and
    lays their latents back on the whole grid, while the decoder sees the whole grid: a code then
    depends only on its own tile's pixels (with n = image_size / downsample, on its own patch), so
    an unchanged patch keeps its code wherever the rest of the image changes, and the decoder can
    still use the neighbours' codes to draw edges across tiles. It is saved in ``image_vq.json``.
    """

    def __init__(self, vq: VQModel, image_size: int | None = None, encoder_tiles: int = 1):
        super().__init__()
        self.vq = vq
        self.image_size = int(image_size or vq.config.sample_size)
        self.downsample = 2 ** (len(vq.config.block_out_channels) - 1)
        if self.image_size % self.downsample:
            raise ValueError(f"image_size={self.image_size} is not a multiple of the downsample {self.downsample}")
        side = self.image_size // self.downsample
        check_int(encoder_tiles, "encoder_tiles", 1)
        if side % encoder_tiles:
            raise ValueError(
                f"encoder_tiles={encoder_tiles}: the {side}-token side of this VQ does not split into that many equal tiles"
            )
        self.encoder_tiles = encoder_tiles
        self.spec = TokenSpec((vq.config.num_vq_embeddings,), (side, side))

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_config(cls, image_size: int = 32, encoder_tiles: int = 1, **vq_config) -> ImageVQ:
        """A randomly initialised VQModel; ``vq_config`` are VQModel's own arguments."""
        return cls(VQModel(sample_size=image_size, **vq_config), image_size, encoder_tiles)

    @classmethod
    def small(
        cls,
        image_size: int = 32,
        num_codes: int = 256,
        channels: tuple[int, ...] = (32, 64, 64),
        latent_channels: int = 16,
        norm_num_groups: int = 4,
        encoder_tiles: int = 1,
    ) -> ImageVQ:
        """A small VQ-GAN (downsample 2 ** (len(channels) - 1)) for embedded data and tests.

        Few norm groups on purpose: with one channel per group, GroupNorm acts as instance norm
        and strips each channel's mean, which is the image's colour; it then trains very slowly.
        """
        return cls.from_config(
            image_size=image_size,
            down_block_types=("DownEncoderBlock2D",) * len(channels),
            up_block_types=("UpDecoderBlock2D",) * len(channels),
            block_out_channels=tuple(channels),
            layers_per_block=1,
            latent_channels=latent_channels,
            num_vq_embeddings=num_codes,
            norm_num_groups=norm_num_groups,
            encoder_tiles=encoder_tiles,
        )

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | os.PathLike,
        subfolder: str | None = None,
        image_size: int | None = None,
        encoder_tiles: int | None = None,
        **kwargs,
    ) -> ImageVQ:
        """Load any diffusers VQModel folder or hub id (e.g. aMUSEd's ``vqvae`` subfolder).

        A local folder's ``config.json`` is checked against VQModel's constructor and its weights
        against the model that config builds (``mgm.io.check_config`` / ``check_weights``) first.
        ``encoder_tiles`` defaults to a local folder's ``image_vq.json`` (a plain diffusers folder or
        a hub id: 1 unless given).
        """
        if not isinstance(path_or_id, (str, os.PathLike)):
            raise ValueError(f"path_or_id={path_or_id!r}: expected a VQModel folder or a hub id")
        path = Path(path_or_id)
        local = path.exists() or str(path_or_id).startswith((".", "/"))
        if local:
            folder = check_folder(path / subfolder if subfolder else path, "a diffusers VQModel folder")
            check_manifest(folder)
            config = check_config(load_json(folder / "config.json"), VQModel, folder / "config.json")
            weights = folder / VQ_WEIGHTS
            model_config = {k: v for k, v in config.items() if not k.startswith("_")}
            check_weights(load_tensors(weights), expected_state(VQModel, model_config, folder / "config.json"), weights)
            if encoder_tiles is None and (folder / IMAGE_CONFIG).is_file():
                encoder_tiles = load_json(folder / IMAGE_CONFIG).get("encoder_tiles", 1)
        try:
            # low_cpu_mem_usage=False: the plain load path (without it diffusers asks for `accelerate`).
            kwargs.setdefault("low_cpu_mem_usage", False)
            vq = VQModel.from_pretrained(str(path_or_id), subfolder=subfolder, use_safetensors=True, **kwargs)
        except (OSError, ValueError) as e:
            if local:  # the folder is there, so its contents are at fault
                raise ValueError(f"{path_or_id}: not a loadable VQModel folder ({e})") from e
            raise FileNotFoundError(f"{path_or_id}: could not load a VQModel from the hub ({e})") from e
        return cls(vq.eval(), image_size, 1 if encoder_tiles is None else encoder_tiles)

    def save_pretrained(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        directory = Path(directory)
        # diffusers writes in place; here it writes into a sibling folder that is swapped in whole.
        with atomic_folder(directory, overwrite) as built:
            self.write_files(built)
        return directory

    def write_files(self, folder: Path) -> None:
        """Write the diffusers folder (and ``image_vq.json`` when it holds more than diffusers
        knows) into ``folder``, which exists; a plain VQ stays a plain diffusers folder."""
        self.vq.save_pretrained(str(folder), safe_serialization=True)
        if self.encoder_tiles > 1:
            save_json({"encoder_tiles": self.encoder_tiles}, folder / IMAGE_CONFIG)

    # -- the tokenizer contract -----------------------------------------------------------------

    def check_images(self, images: torch.Tensor, name: str = "images") -> None:
        """Raise ValueError unless ``images`` is FloatTensor[B, 3, S, S] in [0, 1] at this size."""
        expected = (3, self.image_size, self.image_size)
        if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"{name}: expected a float tensor [B, 3, H, W] in [0, 1], got {got}")
        if tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{name}: shape {tuple(images.shape)}; this tokenizer expects [B, {', '.join(map(str, expected))}]"
            )
        if images.shape[0] == 0:
            raise ValueError(f"{name}: an empty batch; expected at least one image")
        if not bool(torch.isfinite(images).all()):
            raise ValueError(f"{name}: holds NaN or infinite values; mgm images are finite, in [0, 1]")
        low, high = images.min().item(), images.max().item()
        if low < -1e-3 or high > 1 + 1e-3:
            raise ValueError(f"{name}: values span [{low:.3f}, {high:.3f}]; mgm images are in [0, 1]")

    def encode_latents(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, H, W] in [0, 1] -> pre-quantisation latents [B, C, h, w]."""
        n = self.encoder_tiles
        return join_tiles(self.vq.encode(cut_tiles(images * 2 - 1, n)).latents, n)

    def nearest_codes(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [B, C, h, w] -> indices of the nearest codebook vectors, LongTensor[B, h * w]."""
        flat = latents.permute(0, 2, 3, 1).reshape(latents.shape[0], -1, latents.shape[1])  # (B, hw, C)
        return torch.cdist(flat, self.codebook[None].expand(flat.shape[0], -1, -1)).argmin(-1)

    @property
    def codebook(self) -> torch.Tensor:
        return self.vq.quantize.embedding.weight

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """indices LongTensor[B, h * w] -> quantised latents [B, C, h, w]."""
        side = self.spec.shape[0]
        return self.codebook[indices].view(indices.shape[0], side, side, -1).permute(0, 3, 1, 2)

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        """Quantised latents [B, C, h, w] -> images in [-1, 1] (unclamped, for training losses)."""
        vq = self.vq
        spatial = quantized if vq.config.norm_type == "spatial" else None
        return vq.decoder(vq.post_quant_conv(quantized), spatial)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images FloatTensor[B, 3, H, W] in [0, 1] -> codes LongTensor[B, 1, h * w]."""
        self.check_images(images)
        return self.nearest_codes(self.encode_latents(images))[:, None]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes LongTensor[B, 1, h * w] -> images FloatTensor[B, 3, H, W] in [0, 1]."""
        self.spec.check_codes(codes)
        return ((self.decode_latents(self.lookup(codes[:, 0])) + 1) / 2).clamp(0, 1)

    def token_mask(self, pixel_mask: torch.Tensor) -> torch.Tensor:
        """Pixel mask BoolTensor[B, H, W] (True = to regenerate) -> token mask BoolTensor[B, 1, h * w].

        A token is selected when any pixel of its ``downsample x downsample`` patch is selected.
        """
        expected = (self.image_size, self.image_size)
        if pixel_mask.dim() != 3 or tuple(pixel_mask.shape[1:]) != expected:
            raise ValueError(f"mask: shape {tuple(pixel_mask.shape)}; expected [B, {expected[0]}, {expected[1]}]")
        patches = torch.nn.functional.max_pool2d(pixel_mask[:, None].float(), self.downsample)
        return patches.flatten(1)[:, None].bool()
