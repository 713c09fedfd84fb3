"""Shared tiny components for the tests (hidden size 32, one or two layers)."""

from __future__ import annotations

import pytest
import torch

from mgm.models import MaskedTransformer


@pytest.fixture
def tiny_model() -> MaskedTransformer:
    torch.manual_seed(0)
    return MaskedTransformer([8, 6], [4, 4], dim=32, depth=1, num_heads=2, num_classes=3).eval()


@pytest.fixture
def context_model() -> MaskedTransformer:
    torch.manual_seed(0)
    return MaskedTransformer([8], [6], dim=32, depth=1, num_heads=2, num_classes=2, context_dim=5).eval()


@pytest.fixture
def tiny_vq():
    from mgm.tokenizers import ImageVQ

    torch.manual_seed(0)
    return ImageVQ.small(image_size=16, num_codes=32, channels=(16, 32), latent_channels=4).eval()


@pytest.fixture
def tiny_image_pipeline(tiny_vq):
    from mgm.pipelines import ImagePipeline

    torch.manual_seed(0)
    transformer = MaskedTransformer([32], [8, 8], dim=32, depth=1, num_heads=2, num_classes=3)
    return ImagePipeline(tiny_vq, transformer, {"num_steps": 4}, ["a", "b", "c"])


@pytest.fixture
def tiny_video_pipeline(tiny_vq):
    """A VideoPipeline of 4 frames over the tiny VQ's 8x8 tokens per frame, MaskViT's alternating
    per-frame and spatiotemporal windows."""
    from mgm.pipelines import VideoPipeline
    from mgm.tokenizers.video_vq import VideoVQ

    torch.manual_seed(0)
    transformer = MaskedTransformer([32], [4, 8, 8], dim=32, depth=2, num_heads=2, num_classes=3,
                                    windows=[[1, 8, 8], [4, 4, 4]])  # fmt: skip
    return VideoPipeline(VideoVQ(tiny_vq, 4), transformer, {"num_steps": 4}, ["a", "b", "c"])


@pytest.fixture
def tiny_ar_pipeline(tiny_vq):
    """An ARTransformer over the tiny VQ's 64 tokens, decoding with SJD (window 8) by default."""
    from mgm.models import ARTransformer
    from mgm.pipelines import ARImagePipeline

    torch.manual_seed(0)
    model = ARTransformer(vocab_size=32, max_length=64, dim=32, depth=1, num_heads=2, num_classes=3)
    return ARImagePipeline(tiny_vq, model, {"method": "sjd", "window": 8}, ["a", "b", "c"])


@pytest.fixture
def tiny_flex_ar_pipeline(tiny_vq):
    """A FlexARTransformer over the tiny VQ's 8x8 tokens, decoding with LPD (4 groups) by default."""
    from mgm.models import FlexARTransformer
    from mgm.pipelines import FlexARImagePipeline

    torch.manual_seed(0)
    model = FlexARTransformer([32], [8, 8], dim=32, depth=1, num_heads=2, num_classes=3)
    return FlexARImagePipeline(tiny_vq, model, {"method": "lpd", "num_steps": 4}, ["a", "b", "c"])


def quiet_trainer(max_steps: int, **kwargs):
    """A CPU Lightning Trainer with no logger, checkpoints, progress bar or summary."""
    import tempfile

    import lightning as L

    options = dict(
        default_root_dir=tempfile.mkdtemp(prefix="mgm-test-"),  # not the working directory
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(max_steps=max_steps, **{**options, **kwargs})


@pytest.fixture
def tiny_audio_pipeline():
    """8 kHz codec, 4 codebooks of 256 codes, clips of up to 10 frames (0.2 s), 3 classes."""
    from mgm.pipelines import AudioPipeline
    from mgm.tokenizers import EncodecTokenizer

    torch.manual_seed(0)
    tokenizer = EncodecTokenizer.small(seconds=0.2).eval()
    transformer = MaskedTransformer([256] * 4, [10], dim=32, depth=1, num_heads=2, num_classes=3)
    settings = {"method": "group", "plan": "gipd", "steps": [3, 2]}
    return AudioPipeline(tokenizer, transformer, settings, ["low", "mid", "high"])


@pytest.fixture
def tiny_motion_pipeline():
    """Part-aware MotionVQ (2 codebooks of 16), clips of up to 10 tokens (40 frames, 2 s), captions
    through a hashed-word encoder."""
    from mgm.models.text import WordTextEncoder
    from mgm.pipelines.motion import MotionPipeline
    from mgm.tokenizers import MotionVQ

    torch.manual_seed(0)
    tokenizer = MotionVQ(codebook_size=16, code_dim=8, width=16, depth=1, max_frames=40).eval()
    text = WordTextEncoder(dim=16, depth=1, num_heads=2, num_buckets=64)
    transformer = MaskedTransformer([16, 16], [10], dim=32, depth=1, num_heads=2, context_dim=16)
    return MotionPipeline(tokenizer, transformer, text_encoder=text)


@pytest.fixture
def cli_error(capsys):
    """``cli_error(main, argv, match)``: the CLI exits with status 2 after printing one line
    ``error: ...`` matching ``match`` on stderr (no traceback); returns that line."""
    import re

    def check(main, argv, match):
        with pytest.raises(SystemExit) as raised:
            main(argv)
        assert raised.value.code == 2, raised.value.code
        err = capsys.readouterr().err.strip().splitlines()
        assert err, "nothing on stderr"
        line = err[-1]
        # No traceback (logging noise of other tests' closed streams may precede the line, with its own).
        tracebacks = sum(x.startswith("Traceback") for x in err) - sum(x == "--- Logging error ---" for x in err)
        assert tracebacks == 0, err[-6:]
        assert line.startswith("error: ") or ": error: " in line, line
        assert re.search(match, line), (match, line)
        return line

    return check


def decodable(method: str, model):
    """``model`` with whatever the registered ``method`` needs of it: a randomly initialised token
    critic (``mgm.models.CriticModel``) for a method that needs ``critic_scores``; for a
    flexible-order AR method, a random FlexARTransformer of the model's spec (one codebook only:
    a spec with more skips the test)."""
    from mgm.decoding import FLEX_AR, METHODS
    from mgm.models import CriticModel, FlexARTransformer, TokenCritic

    if METHODS[method].kind == FLEX_AR:
        spec = model.spec
        if spec.num_codebooks != 1:
            pytest.skip("a flexible-order AR model takes one codebook")
        torch.manual_seed(0)
        return FlexARTransformer(spec.codebook_sizes, spec.shape, dim=32, depth=1, num_heads=2,
                                 num_classes=model.num_classes).eval()  # fmt: skip

    if "critic_scores" in METHODS[method].needs:
        critic = TokenCritic(model.config["dim"], model.spec.num_codebooks, num_heads=2)
        torch.nn.init.normal_(critic.out.weight, std=1.0)  # scores that vary, so the ranking matters
        return CriticModel(model, critic.eval())
    return model
