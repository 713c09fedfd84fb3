import json

import pytest
import torch

from mgm.pipelines import ImagePipeline


def test_generate_shapes_range_and_seed(tiny_image_pipeline):
    pipe = tiny_image_pipeline
    a = pipe.generate(num=5, labels=[0, 2], seed=1)
    assert a.shape == (5, 3, 16, 16) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, pipe.generate(num=5, labels=[0, 2], seed=1))
    assert not torch.equal(a, pipe.generate(num=5, labels=[0, 2], seed=2))
    res = pipe.generate_codes(num=5, labels=[1], num_steps=3)
    assert res.nfe == 3 and res.codes.shape == (5, 1, 64)


def test_batches_give_the_requested_number(tiny_image_pipeline):
    res = tiny_image_pipeline.generate_codes(num=7, batch_size=3)
    assert res.codes.shape[0] == 7 and res.nfe == 3 * 4  # three batches of four steps


def test_inpaint_keeps_tokens_and_pixels_outside_the_mask(tiny_image_pipeline):
    pipe = tiny_image_pipeline
    images = torch.rand(2, 3, 16, 16)
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[:, 8:] = True  # right half
    out = pipe.inpaint(images, mask, labels=[0, 1])
    assert torch.equal(out[..., :8], images[..., :8]), "pixels outside the mask are the input's"
    token_mask = pipe.tokenizer.token_mask(mask.expand(2, -1, -1))
    res = pipe.edit_codes(images, token_mask, labels=[0, 1])
    init = pipe.tokenizer.encode(images)
    assert torch.equal(res.codes[~token_mask], init[~token_mask]), "tokens outside the mask never change"
    assert not torch.equal(res.codes[token_mask], init[token_mask])


def test_outpaint_keeps_the_shifted_content(tiny_image_pipeline):
    images = torch.rand(1, 3, 16, 16)
    out = tiny_image_pipeline.outpaint(images, "right", amount=3)  # rounded up to 4 px (2 tokens)
    assert torch.equal(out[..., :12], images[..., 4:])
    out = tiny_image_pipeline.outpaint(images, "up", amount=4)
    assert torch.equal(out[..., 4:, :], images[..., :12, :])


def test_variations_change_about_strength_of_the_tokens(tiny_image_pipeline):
    pipe = tiny_image_pipeline
    images = torch.rand(2, 3, 16, 16)
    out = pipe.variations(images, strength=0.25)
    assert out.shape == images.shape
    with pytest.raises(ValueError, match="strength=0"):
        pipe.variations(images, strength=0)


def test_save_load_round_trip(tiny_image_pipeline, tmp_path):
    tiny_image_pipeline.save_pretrained(tmp_path / "pipe")
    loaded = ImagePipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.settings == tiny_image_pipeline.settings and loaded.class_names == ["a", "b", "c"]
    assert torch.equal(loaded.generate(num=3, seed=0), tiny_image_pipeline.generate(num=3, seed=0))
    config = json.loads((tmp_path / "pipe" / "pipeline.json").read_text())
    assert config["_class_name"] == "ImagePipeline"


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda p: p.generate(num=2, labels=[3]),
            r"labels: 3 is not a class of this model; expected labels in \[0, 2\]",
        ),
        (lambda p: p.generate(num=0), "num=0"),
        (lambda p: p.generate(num=2, method="nope"), "method='nope'"),
        (lambda p: p.generate(num=2, schedule="nope"), "schedule='nope'"),
        (
            lambda p: p.inpaint(torch.rand(1, 3, 20, 20), torch.ones(20, 20, dtype=torch.bool)),
            r"expects \[B, 3, 16, 16\]",
        ),
        (
            lambda p: p.inpaint(torch.rand(1, 4, 16, 16), torch.ones(16, 16, dtype=torch.bool)),
            r"expects \[B, 3, 16, 16\]",
        ),
        (lambda p: p.inpaint(torch.rand(1, 3, 16, 16), torch.ones(8, 8, dtype=torch.bool)), "mask: shape"),
        (lambda p: p.inpaint(torch.rand(1, 3, 16, 16), torch.ones(16, 16)), "BoolTensor"),
        (lambda p: p.outpaint(torch.rand(1, 3, 16, 16), "sideways"), "direction='sideways'"),
    ],
)
def test_bad_input(tiny_image_pipeline, call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny_image_pipeline)


def test_missing_or_corrupt_pipeline_folder(tiny_image_pipeline, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        ImagePipeline.from_pretrained(tmp_path / "nope")
    tiny_image_pipeline.save_pretrained(tmp_path / "pipe")
    (tmp_path / "pipe" / "transformer" / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="transformer/model.safetensors is not the file this folder was saved with"):
        ImagePipeline.from_pretrained(tmp_path / "pipe")
    for manifest in ("manifest.json", "transformer/manifest.json"):  # without manifests: the loaders' checks
        (tmp_path / "pipe" / manifest).unlink()
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        ImagePipeline.from_pretrained(tmp_path / "pipe")
    (tmp_path / "pipe" / "pipeline.json").unlink()
    with pytest.raises(FileNotFoundError, match="pipeline.json"):
        ImagePipeline.from_pretrained(tmp_path / "pipe")


def test_recap_through_the_pipeline(tiny_image_pipeline):
    pipe = tiny_image_pipeline
    full = pipe.generate_codes(3, method="recap", full_first=4, seed=2)
    maskgit = pipe.generate_codes(3, method="maskgit", seed=2)
    assert torch.equal(full.codes, maskgit.codes), "no cheap steps: MaskGIT bit for bit"
    cheap = pipe.generate_codes(3, method="recap", full_first=1, cheap_per_full=2, seed=2)
    assert cheap.nfe == 4 and cheap.compute < 4
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['cheap'\]"):
        pipe.generate_codes(3, method="recap", cheap=2)


def test_ar_pipeline_ar_and_sjd_and_round_trip(tiny_ar_pipeline, tmp_path):
    pipe = tiny_ar_pipeline
    images = pipe.generate(3, labels=[0, 2], method="ar", seed=0)
    assert images.shape == (3, 3, 16, 16)
    greedy_ar = pipe.generate_codes(2, method="ar", temperature=0.0)
    greedy_sjd = pipe.generate_codes(2, method="sjd", temperature=0.0, init="above")
    assert torch.equal(greedy_ar.codes, greedy_sjd.codes) and greedy_ar.codes.shape == (2, 1, 64)
    assert int(greedy_sjd.passes_per_sample().max()) <= 64 == int(greedy_ar.passes_per_sample().max())
    pipe.save_pretrained(tmp_path / "ar")
    from mgm.pipelines import ARImagePipeline

    loaded = ARImagePipeline.from_pretrained(tmp_path / "ar")
    assert torch.equal(loaded.generate_codes(2, seed=3).codes, pipe.generate_codes(2, seed=3).codes)
    with pytest.raises(ValueError, match="method='maskgit'"):
        pipe.generate(2, method="maskgit")


def test_first_index_splits_a_run_into_calls(tiny_image_pipeline):
    """Sample i of a call with first_index=f is sample f + i of one call: the same seed stream and,
    without labels, the same class in the cycle."""
    pipe = tiny_image_pipeline
    whole = pipe.generate_codes(7, seed=11, num_steps=3).codes
    parts = [pipe.generate_codes(n, seed=11, num_steps=3, first_index=f).codes for f, n in ((0, 2), (2, 4), (6, 1))]
    assert torch.equal(torch.cat(parts), whole)
    assert pipe.resolve_labels(4, None, first=5).tolist() == [2, 0, 1, 2]  # 3 classes
    assert pipe.resolve_labels(3, [0, 2], first=1).tolist() == [2, 0, 2]
    with pytest.raises(ValueError, match="first_index=-1"):
        pipe.generate(2, first_index=-1)


def test_images_are_decoded_a_batch_at_a_time_as_in_one_pass(tiny_image_pipeline):
    codes = tiny_image_pipeline.generate_codes(5, seed=2, num_steps=2).codes
    whole = tiny_image_pipeline.tokenizer.decode(codes)
    from mgm.pipelines import base

    base_chunk, base.DECODE_CHUNK = base.DECODE_CHUNK, 2
    try:
        batched = tiny_image_pipeline.decode_tokens(codes)
    finally:
        base.DECODE_CHUNK = base_chunk
    assert batched.shape == whole.shape
    torch.testing.assert_close(batched, whole, atol=1e-5 * float(whole.abs().max()), rtol=1e-4)
