"""The decoders' speed options (autocast dtype, torch.compile) and the loop's freedom from host syncs."""

import contextlib

import pytest
import torch

from mgm.decoding import group_decode, maskgit_decode, recap_decode
from mgm.models import Condition, MaskedTransformer

# Tensor methods that copy a value to the host (on a GPU: a device -> host stall).
_HOST_SYNCS = ("item", "tolist", "nonzero", "__bool__", "__int__", "__float__", "__index__", "cpu", "numpy")


class HostSyncError(AssertionError):
    pass


@contextlib.contextmanager
def _no_host_syncs():
    """Within the block, any Tensor method above raises (the loop must stay on the device)."""
    saved = {name: getattr(torch.Tensor, name) for name in _HOST_SYNCS}

    def refuse(name):
        def method(*args, **kwargs):
            raise HostSyncError(f"host sync: Tensor.{name}")

        return method

    try:
        for name in _HOST_SYNCS:
            setattr(torch.Tensor, name, refuse(name))
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


class _SyncGuardedModel:
    """The model; from the first forward on (i.e. inside the step loop) host syncs raise."""

    def __init__(self, model, stack: contextlib.ExitStack):
        self.model, self.stack, self.armed = model, stack, False
        self.spec, self.num_classes, self.accepts = model.spec, model.num_classes, model.accepts

    def _arm(self):
        if not self.armed:
            self.stack.enter_context(_no_host_syncs())
            self.armed = True

    def __call__(self, codes, cond):
        self._arm()
        return self.model(codes, cond)

    def forward_cached(self, codes, cond):
        self._arm()
        return self.model.forward_cached(codes, cond)

    def forward_partial(self, *args, **kwargs):
        return self.model.forward_partial(*args, **kwargs)


def test_the_guard_catches_a_host_sync():
    with pytest.raises(HostSyncError), _no_host_syncs():
        torch.ones(2).sum().item()


@pytest.mark.parametrize("guidance_scale", [0.0, 3.0])
def test_maskgit_step_loop_has_no_host_sync(tiny_model, guidance_scale):
    cond = Condition(labels=torch.tensor([0, 1, 2]))
    with contextlib.ExitStack() as stack:
        guarded = _SyncGuardedModel(tiny_model, stack)
        result = maskgit_decode(
            guarded, tiny_model.spec, batch_size=3, num_steps=5, cond=cond, guidance_scale=guidance_scale,
            temperature=1.0, top_k=4, generator=torch.Generator().manual_seed(0), device="cpu",
        )  # fmt: skip
        assert guarded.armed
    tiny_model.spec.check_codes(result.codes)


@pytest.mark.parametrize("per_sample", [False, True])
def test_group_step_loop_has_no_host_sync(tiny_model, per_sample):
    # One generator, or one per sample (their draws are stacked on the device, no host read).
    generator = [torch.Generator().manual_seed(i) for i in range(2)] if per_sample else torch.Generator()
    with contextlib.ExitStack() as stack:
        guarded = _SyncGuardedModel(tiny_model, stack)
        result = group_decode(
            guarded, tiny_model.spec, batch_size=2, plan="magnet", steps=[3, 2], guidance_scale=2.0,
            cond=Condition(labels=torch.tensor([0, 1])), generator=generator, device="cpu",
        )  # fmt: skip
        assert guarded.armed, "the guard was on for the loop"
    tiny_model.spec.check_codes(result.codes)


def test_recap_step_loop_has_no_host_sync_with_one_codebook(tiny_image_pipeline):
    """(With K > 1 codebooks, ReCAP reads each chunk's position count back once per full step.)"""
    model = tiny_image_pipeline.transformer.eval()
    with contextlib.ExitStack() as stack:
        guarded = _SyncGuardedModel(model, stack)
        result = recap_decode(
            guarded, model.spec, batch_size=3, num_steps=8, full_first=2, cheap_per_full=2, guidance_scale=2.0,
            cond=Condition(labels=torch.tensor([0, 1, 2])), generator=torch.Generator().manual_seed(0), device="cpu",
        )  # fmt: skip
        assert guarded.armed
    assert sum(not record.full for record in result.trace) == 4
    model.spec.check_codes(result.codes)


def test_float32_dtype_gives_the_same_codes_as_none(tiny_model):
    run = lambda dtype: (
        maskgit_decode(  # noqa: E731
            tiny_model,
            tiny_model.spec,
            batch_size=4,
            num_steps=4,
            dtype=dtype,
            generator=torch.Generator().manual_seed(3),
        ).codes
    )
    assert torch.equal(run(None), run("float32"))


@pytest.mark.parametrize("decoder", ["maskgit", "group", "recap"])
def test_bfloat16_autocast_decodes_valid_codes(tiny_model, decoder):
    kwargs = dict(batch_size=3, cond=Condition(labels=torch.tensor([0, 1, 2])), guidance_scale=2.0, dtype="bfloat16")
    kwargs["generator"] = torch.Generator().manual_seed(0)
    if decoder == "maskgit":
        result = maskgit_decode(tiny_model, tiny_model.spec, num_steps=4, **kwargs)
    elif decoder == "group":
        result = group_decode(tiny_model, tiny_model.spec, plan="soundstorm", **kwargs)
    else:
        result = recap_decode(tiny_model, tiny_model.spec, num_steps=6, **kwargs)
    tiny_model.spec.check_codes(result.codes)


def test_bad_speed_options_fail_before_work(tiny_model):
    with pytest.raises(ValueError, match="dtype='half'"):
        maskgit_decode(tiny_model, tiny_model.spec, dtype="half")
    with pytest.raises(ValueError, match="compile='yes'"):
        maskgit_decode(tiny_model, tiny_model.spec, compile="yes")
    with pytest.raises(ValueError, match="compile=True needs an nn.Module"):
        maskgit_decode(lambda codes, cond: tiny_model(codes, cond), tiny_model.spec, compile=True)


def test_pipeline_settings_take_the_speed_options(tiny_image_pipeline):
    pipe = tiny_image_pipeline
    pipe.settings = pipe.settings.update(dtype="bfloat16")
    images = pipe.generate(num=2)
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.float32
    with pytest.raises(ValueError, match="dtype='fp8'"):
        pipe.settings.update(dtype="fp8")


@pytest.mark.slow
def test_compiled_forward_gives_the_same_codes(tiny_model):
    """torch.compile (inductor) on the CPU: same codes as eager up to float reassociation, so
    greedy decoding of a tiny model, whose logits are well separated, must agree exactly."""
    run = lambda compile: maskgit_decode(  # noqa: E731
        tiny_model, tiny_model.spec, batch_size=4, num_steps=4, temperature=0.0, choice_temperature=0.0,
        compile=compile, cond=Condition(labels=torch.tensor([0, 1, 2, 0])), guidance_scale=1.0,
    ).codes  # fmt: skip
    assert torch.equal(run(False), run(True))


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["recap", "recap cached", "maskgit cached", "group reuse", "group cached"])
def test_compiled_reuse_and_cached_passes_give_the_same_codes(decoder):
    """compile=True for ReCAP, group decoding with reuse and cached decoding: the forward, the
    full pass that keeps the cache and the partial pass (dynamic shapes) all compiled on the CPU;
    greedy decoding agrees with eager exactly."""
    torch.manual_seed(0)
    codebooks = [8, 6] if decoder.startswith("group") else [16]
    model = MaskedTransformer(codebooks, [4, 4], dim=32, depth=2, num_heads=2, num_classes=3).eval()
    kwargs = dict(batch_size=4, temperature=0.0, choice_temperature=0.0, guidance_scale=1.0,
                  cond=Condition(labels=torch.tensor([0, 1, 2, 0])))  # fmt: skip
    decode, options = {
        "recap": (recap_decode, {"num_steps": 8}),
        "recap cached": (recap_decode, {"num_steps": 8, "cached": True, "refresh": 3}),
        "maskgit cached": (maskgit_decode, {"num_steps": 8, "cached": True, "refresh": 3}),
        "group reuse": (group_decode, {"plan": "soundstorm", "steps": [4, 3], "full_first": 1, "cheap_per_full": 1}),
        "group cached": (group_decode, {"plan": "soundstorm", "steps": [4, 3], "cached": True, "refresh": 2}),
    }[decoder]
    eager = decode(model, model.spec, **kwargs, **options)
    compiled = decode(model, model.spec, compile=True, **kwargs, **options)
    assert torch.equal(eager.codes, compiled.codes)
    assert compiled.compute == eager.compute < eager.nfe


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_maskgit_loop_has_no_device_sync_on_a_gpu(tiny_model):
    """CUDA's sync debug mode turns any device -> host synchronisation into an error."""
    model = tiny_model.cuda()
    cond = Condition(labels=torch.tensor([0, 1, 2], device="cuda"))
    generator = torch.Generator("cuda").manual_seed(0)
    with contextlib.ExitStack() as stack:

        class Armed(_SyncGuardedModel):
            def _arm(self):
                if not self.armed:
                    torch.cuda.set_sync_debug_mode("error")
                    self.stack.callback(torch.cuda.set_sync_debug_mode, "default")
                    self.armed = True

        guarded = Armed(model, stack)
        result = maskgit_decode(
            guarded, model.spec, batch_size=3, num_steps=5, cond=cond, guidance_scale=2.0, generator=generator,
            device="cuda", dtype="bfloat16",
        )  # fmt: skip
    model.spec.check_codes(result.codes.cpu())


def test_bfloat16_weights_decode_with_a_float32_context(context_model):
    """Weights stored in bfloat16 (no autocast): the float32 prompt context is cast to the model's dtype."""
    model = context_model.to(torch.bfloat16)
    cond = Condition(context=torch.randn(2, 3, 5))
    result = maskgit_decode(
        model, model.spec, batch_size=2, num_steps=3, cond=cond, guidance_scale=2.0,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    model.spec.check_codes(result.codes)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_forward_gives_the_same_codes_on_a_gpu(tiny_model):
    """compile=True on a GPU (a CUDA-graph replay of the inductor forward): greedy decoding of a
    tiny float32 model, whose logits are well separated, agrees with eager exactly."""
    model = tiny_model.cuda()
    run = lambda compile: maskgit_decode(  # noqa: E731
        model, model.spec, batch_size=4, num_steps=4, temperature=0.0, choice_temperature=0.0, compile=compile,
        cond=Condition(labels=torch.tensor([0, 1, 2, 0])), guidance_scale=1.0, device="cuda",
    ).codes  # fmt: skip
    assert torch.equal(run(False), run(True))
