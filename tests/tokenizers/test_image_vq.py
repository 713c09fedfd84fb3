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


@pytest.mark.parametrize("tiles", [2, 8])
def test_encoder_tiles_make_each_code_depend_on_its_tile_only(tiles):
    torch.manual_seed(0)
    vq = ImageVQ.small(image_size=16, num_codes=32, channels=(16, 32), latent_channels=4, encoder_tiles=tiles).eval()
    images = torch.rand(3, 3, 16, 16)
    changed = images.clone()
    side = 16 // tiles  # pixels per tile
    changed[:, :, side : 2 * side, :side] = torch.rand(3, 3, side, side)  # the tile at row 1, column 0
    with torch.no_grad():
        before, after = vq.encode_latents(images), vq.encode_latents(changed)
    per_tile = 8 // tiles  # latent cells per tile side
    differs = (before - after).abs().amax(1) > 1e-4 * before.abs().amax()  # [B, 8, 8]
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[per_tile : 2 * per_tile, :per_tile] = True
    assert differs[:, inside].all()  # the changed tile's latents move (a random image is no fixed point)
    assert not differs[:, ~inside].any()  # and no other tile's do
    # The whole-image VQ has no such locality: the same change moves latents outside the tile.
    whole = ImageVQ.small(image_size=16, num_codes=32, channels=(16, 32), latent_channels=4).eval()
    with torch.no_grad():
        spread = (whole.encode_latents(images) - whole.encode_latents(changed)).abs().amax(1)
    assert (spread[:, ~inside] > 1e-4 * spread.amax()).any()


def test_encoder_tiles_are_saved_and_loaded(tmp_path):
    vq = ImageVQ.small(image_size=16, num_codes=32, channels=(16, 32), latent_channels=4, encoder_tiles=4).eval()
    vq.save_pretrained(tmp_path / "vq")
    loaded = ImageVQ.from_pretrained(tmp_path / "vq")
    assert loaded.encoder_tiles == 4
    images = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded.encode(images), vq.encode(images))
    assert torch.equal(loaded.decode(vq.encode(images)), vq.decode(vq.encode(images)))
    assert ImageVQ.from_pretrained(tmp_path / "vq", encoder_tiles=1).encoder_tiles == 1  # an argument overrides
    plain = ImageVQ.small(image_size=16, num_codes=32, channels=(16, 32), latent_channels=4)
    plain.save_pretrained(tmp_path / "plain")
    assert not (tmp_path / "plain" / "image_vq.json").exists()  # a plain VQ stays a plain diffusers folder


@pytest.mark.parametrize("tiles, match", [(3, "encoder_tiles=3: the 8-token side"), (0, "encoder_tiles")])
def test_encoder_tiles_that_do_not_split_the_grid_are_named(tiles, match):
    with pytest.raises(ValueError, match=match):
        ImageVQ.small(image_size=16, num_codes=32, channels=(16, 32), latent_channels=4, encoder_tiles=tiles)
