import pytest
import torch

from mgm.tokenizers import ImageVQ
from tests.tokenizers.contract import check_tokenizer_contract


def test_encode_decode_shapes(tiny_vq):
    assert tiny_vq.downsample == 2 and tiny_vq.spec.shape == (8, 8) and tiny_vq.spec.codebook_sizes == (32,)
    images = torch.rand(3, 3, 16, 16)
    codes = check_tokenizer_contract(tiny_vq, images, extent=(16, 16))
    assert codes.shape == (3, 1, 64)
    # decode clamps to [0, 1] (test_decode_matches_diffusers_own_quantised_decode checks the values).


def test_codes_are_the_nearest_codebook_entries(tiny_vq):
    # The VQ invariant: each code indexes the codebook vector closest to its latent.
    images = torch.rand(2, 3, 16, 16)
    latents = tiny_vq.encode_latents(images)
    codes = tiny_vq.encode(images)[:, 0]
    flat = latents.permute(0, 2, 3, 1).reshape(2, 64, -1)
    distances = ((flat[:, :, None] - tiny_vq.codebook[None, None]) ** 2).sum(-1)
    chosen = distances.gather(-1, codes[..., None])[..., 0]
    torch.testing.assert_close(chosen, distances.min(-1).values)
    # ...and lookup returns exactly those vectors on the latent grid.
    torch.testing.assert_close(tiny_vq.lookup(codes)[0, :, 0, 1], tiny_vq.codebook[codes[0, 1]])


def test_decode_matches_diffusers_own_quantised_decode(tiny_vq):
    images = torch.rand(2, 3, 16, 16)
    ours = tiny_vq.decode(tiny_vq.encode(images))
    with torch.no_grad():
        theirs = tiny_vq.vq.decode(tiny_vq.encode_latents(images)).sample
    torch.testing.assert_close(ours, ((theirs + 1) / 2).clamp(0, 1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "images, match",
    [
        (torch.rand(2, 3, 16, 16) * 2, r"values span \[.*\]; mgm images are in \[0, 1\]"),
        (torch.rand(2, 3, 20, 20), r"shape \(2, 3, 20, 20\); this tokenizer expects \[B, 3, 16, 16\]"),
        (torch.rand(2, 1, 16, 16), r"expects \[B, 3, 16, 16\]"),
        (torch.randint(0, 255, (2, 3, 16, 16)), "float tensor"),
    ],
)
def test_bad_images(tiny_vq, images, match):
    with pytest.raises(ValueError, match=match):
        tiny_vq.encode(images)


def test_pixel_mask_to_token_mask(tiny_vq):
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[0, 0, 0] = True  # one pixel of the top-left 2x2 patch
    mask[0, 5:8, 10:12] = True  # rows 5-7 touch token rows 2 and 3, columns 10-11 token column 5
    tokens = tiny_vq.token_mask(mask)
    assert tokens.shape == (1, 1, 64)
    expected = {0, 2 * 8 + 5, 3 * 8 + 5}
    assert set(tokens[0, 0].nonzero()[:, 0].tolist()) == expected
    with pytest.raises(ValueError, match=r"mask: shape \(1, 8, 8\)"):
        tiny_vq.token_mask(torch.zeros(1, 8, 8, dtype=torch.bool))


def test_save_and_load_through_diffusers(tiny_vq, tmp_path):
    tiny_vq.save_pretrained(tmp_path / "vq")
    assert (tmp_path / "vq" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = ImageVQ.from_pretrained(tmp_path / "vq")
    images = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded.encode(images), tiny_vq.encode(images))
    with pytest.raises(FileExistsError):
        tiny_vq.save_pretrained(tmp_path / "vq")
    with pytest.raises(FileNotFoundError, match="missing: no such directory"):
        ImageVQ.from_pretrained(tmp_path / "missing")


def test_corrupt_weights_are_named(tiny_vq, tmp_path):
    tiny_vq.save_pretrained(tmp_path / "vq")
    (tmp_path / "vq" / "diffusion_pytorch_model.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not the file this folder was saved with"):
        ImageVQ.from_pretrained(tmp_path / "vq")
    (tmp_path / "vq" / "manifest.json").unlink()  # a plain diffusers folder: the weights file named
    with pytest.raises(ValueError, match=r"diffusion_pytorch_model\.safetensors: not a readable safetensors file"):
        ImageVQ.from_pretrained(tmp_path / "vq")
