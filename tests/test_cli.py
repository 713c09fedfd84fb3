"""train.py / generate.py as a user runs them, at toy size."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mgm.cli import generate, train
from mgm.data import load_codes

ROOT = Path(__file__).resolve().parents[1]


def test_train_then_generate_codes(tmp_path, capsys, cli_error):
    model_dir = tmp_path / "model"
    train.main(
        [
            "fit",
            "--config",
            str(ROOT / "configs/markov_toy.yaml"),
            "--trainer.max_steps=3",
            "--trainer.logger=false",
            "--trainer.enable_checkpointing=false",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.callbacks.init_args.directory={model_dir}",
            "--data.init_args.num_sequences=256",
        ]
    )
    assert (model_dir / "config.json").is_file() and (model_dir / "model.safetensors").is_file()
    capsys.readouterr()  # training's own output (e.g. the model summary)

    out = tmp_path / "samples"
    args = [
        "codes",
        "--model",
        str(model_dir),
        "--num",
        "4",
        "--num-steps",
        "3",
        "--labels",
        "0",
        "1",
        "--guidance-scale",
        "1.0",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    paths = generate.main(args)
    assert capsys.readouterr().out.split() == [str(out / "codes.safetensors")]
    codes, labels, spec = load_codes(paths[0])
    assert codes.shape == (4, 1, 24) and labels.tolist() == [0, 1, 0, 1]
    again = generate.main([*args, "--overwrite"])
    assert torch.equal(load_codes(again[0])[0], codes), "same seed, same samples"
    cli_error(generate.main, args, "--overwrite")


def test_import_mgm_is_light():
    code = "import sys, mgm; assert 'transformers' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_generate_image_sample_and_inpaint(tiny_image_pipeline, tmp_path, capsys, cli_error):
    from mgm.pipelines.image_io import read_image, write_pngs

    model = tiny_image_pipeline.save_pretrained(tmp_path / "pipe")
    out = tmp_path / "out"
    args = [
        "image",
        "--model",
        str(model),
        "--num",
        "3",
        "--labels",
        "1",
        "--num-steps",
        "2",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    paths = generate.main(args)
    names = sorted(p.name for p in paths)
    assert names == ["sample_000.png", "sample_001.png", "sample_002.png", "sample_grid.png"]
    assert capsys.readouterr().out.split() == [str(p) for p in paths]
    assert read_image(out / "sample_000.png").shape == (3, 16, 16)
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    cli_error(generate.main, args, "--overwrite")
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before, "nothing rewritten"

    mask = torch.zeros(3, 16, 16)
    mask[:, :, 8:] = 1.0
    write_pngs({"mask.png": mask, "input.png": read_image(out / "sample_000.png")}, tmp_path)
    paths = generate.main(
        [
            "image",
            "inpaint",
            "--model",
            str(model),
            "--input",
            str(tmp_path / "input.png"),
            "--mask",
            str(tmp_path / "mask.png"),
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    result = read_image(paths[0])
    assert torch.equal(result[:, :, :8], read_image(tmp_path / "input.png")[:, :, :8])


def test_generate_image_bad_input_leaves_nothing(tiny_image_pipeline, tmp_path, cli_error):
    from mgm.pipelines.image_io import write_pngs

    model = tiny_image_pipeline.save_pretrained(tmp_path / "pipe")
    write_pngs({"big.png": torch.rand(3, 24, 24)}, tmp_path)
    out = tmp_path / "out"
    common = ["--device", "cpu", "--out", str(out)]
    big = ["image", "variations", "--model", str(model), "--input", str(tmp_path / "big.png"), *common]
    cli_error(generate.main, big, r"expects \[B, 3, 16, 16\]")
    cli_error(generate.main, ["image", "--model", str(model), "--labels", "7", *common], "labels: 7")
    cli_error(generate.main, ["image", "--model", str(tmp_path / "none"), *common], "no such folder")
    assert not out.exists()


def test_train_image_recipes_fast_dev_run(tiny_vq, tmp_path):
    common = ["--trainer.fast_dev_run=true", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"]
    tiny = [
        "--model.init_args.tokenizer.init_args.vq.init_args.sample_size=16",
        "--model.init_args.tokenizer.init_args.vq.init_args.block_out_channels=[8, 16]",
        "--model.init_args.tokenizer.init_args.vq.init_args.down_block_types=[DownEncoderBlock2D, DownEncoderBlock2D]",
        "--model.init_args.tokenizer.init_args.vq.init_args.up_block_types=[UpDecoderBlock2D, UpDecoderBlock2D]",
        "--model.init_args.tokenizer.init_args.vq.init_args.norm_num_groups=4",
        "--data.init_args.num_images=64",
        "--data.init_args.image_size=16",
        "--data.init_args.batch_size=8",
        "--trainer.callbacks.init_args.directory=" + str(tmp_path / "vq"),
    ]
    train.main(["fit", "--config", str(ROOT / "configs/image/vq_shapes.yaml"), *common, *tiny])
    assert (tmp_path / "vq" / "config.json").is_file()

    tiny_vq.save_pretrained(tmp_path / "tiny_vq")
    tok = str(tmp_path / "tiny_vq")
    ar = [
        "--model.init_args.model.init_args.vocab_size=32",
        "--model.init_args.model.init_args.dim=32",
        "--model.init_args.model.init_args.depth=1",
        "--model.init_args.model.init_args.num_heads=2",
        f"--data.init_args.tokenizer={tok}",
        f"--data.init_args.cache={tmp_path / 'codes.safetensors'}",
        "--data.init_args.images.init_args.num_images=64",
        "--data.init_args.images.init_args.image_size=16",
        "--data.init_args.batch_size=8",
        f"--trainer.callbacks.init_args.directory={tmp_path / 'ar'}",
        f"--trainer.callbacks.init_args.tokenizer={tok}",
    ]
    train.main(["fit", "--config", str(ROOT / "configs/image/ar_shapes.yaml"), *common, *ar])
    from mgm.pipelines import ARImagePipeline

    transformer = [
        "--model.init_args.model.init_args.codebook_sizes=[32]",
        "--model.init_args.model.init_args.dim=32",
        "--model.init_args.model.init_args.depth=1",
        "--model.init_args.model.init_args.num_heads=2",
        f"--model.init_args.init_from={tmp_path / 'ar' / 'transformer'}",  # warm start from the AR model
        f"--data.init_args.tokenizer={tok}",
        f"--data.init_args.cache={tmp_path / 'codes.safetensors'}",  # reused: same tokenizer and images
        "--data.init_args.images.init_args.num_images=64",
        "--data.init_args.images.init_args.image_size=16",
        "--data.init_args.batch_size=8",
        "--trainer.callbacks=[]",  # the shipped recipe's pipeline/sample callbacks point at outputs/
        "--trainer.callbacks+=mgm.training.SavePipeline",
        f"--trainer.callbacks.directory={tmp_path / 'pipe'}",
        "--trainer.callbacks.pipeline=mgm.pipelines.ImagePipeline",
        f"--trainer.callbacks.tokenizer={tok}",
        "--trainer.callbacks+=mgm.training.ImageSampleGrid",
        f"--trainer.callbacks.tokenizer={tok}",
        f"--trainer.callbacks.directory={tmp_path}",
    ]
    train.main(["fit", "--config", str(ROOT / "configs/image/transformer_shapes.yaml"), *common, *transformer])
    assert (tmp_path / "codes.safetensors").is_file() and (tmp_path / "pipe" / "pipeline.json").is_file()
    assert list((tmp_path / "samples").glob("*.png"))

    pipe = ARImagePipeline.from_pretrained(tmp_path / "ar")
    assert pipe.settings.method == "sjd" and pipe.generate(2, seed=0).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("recipe", ["flex_ar_shapes.yaml", "flex_ar_shapes_arpg.yaml"])
def test_train_flex_ar_recipes_fast_dev_run(recipe, tiny_vq, tmp_path):
    """Both recipes on tiny data, warm-started from a tiny AR model, write a FlexARImagePipeline."""
    from mgm.models import ARTransformer
    from mgm.pipelines import FlexARImagePipeline

    tok = tiny_vq.save_pretrained(tmp_path / "tok")
    torch.manual_seed(0)
    ARTransformer(vocab_size=32, max_length=64, dim=32, depth=1, num_heads=2, num_classes=10).save_pretrained(
        tmp_path / "ar"
    )
    args = [
        "fit", "--config", str(ROOT / "configs/image" / recipe), "--trainer.fast_dev_run=true",
        "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
        "--model.init_args.model.init_args.codebook_sizes=[32]", "--model.init_args.model.init_args.dim=32",
        "--model.init_args.model.init_args.depth=1", "--model.init_args.model.init_args.num_heads=2",
        f"--model.init_args.init_from={tmp_path / 'ar'}", f"--data.init_args.tokenizer={tok}",
        f"--data.init_args.cache={tmp_path / 'codes.safetensors'}", "--data.init_args.images.init_args.num_images=64",
        "--data.init_args.images.init_args.image_size=16", "--data.init_args.batch_size=8",
        f"--trainer.callbacks.init_args.directory={tmp_path / 'flex'}",
        f"--trainer.callbacks.init_args.tokenizer={tok}",
    ]  # fmt: skip
    train.main(args)
    pipe = FlexARImagePipeline.from_pretrained(tmp_path / "flex")
    assert pipe.settings.method in ("lpd", "arpg") and pipe.generate(2, seed=0).shape == (2, 3, 16, 16)


def test_train_codec_decoder_recipe_fast_dev_run(tmp_path):
    from mgm.tokenizers import EncodecTokenizer

    sizes = {"n_filters": 4, "dimension": 8, "lstm": 1, "bins": 16, "num_codebooks": 2}
    torch.manual_seed(0)
    saved = EncodecTokenizer(sample_rate=8000, seconds=2.0, **sizes)
    saved.save_pretrained(tmp_path / "codec")
    args = [
        "fit", "--config", str(ROOT / "configs/audio/codec_tones_decoder.yaml"),
        "--trainer.fast_dev_run=true", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
        *[f"--model.init_args.tokenizer.init_args.{name}={value}" for name, value in sizes.items()],
        f"--model.init_args.init_from={tmp_path / 'codec'}",
        "--model.init_args.stft_n_fft=1024",
        "--data.init_args.num_clips=8", "--data.init_args.batch_size=4",
        f"--trainer.callbacks.init_args.directory={tmp_path / 'tuned'}",
    ]  # fmt: skip
    train.main(args)
    tuned = EncodecTokenizer.from_pretrained(tmp_path / "tuned")
    before, after = saved.state_dict(), tuned.state_dict()
    assert all(
        torch.equal(after[name], value) for name, value in before.items() if not name.startswith("model.decoder.")
    )
    assert not torch.equal(
        after["model.decoder.model.0.conv.conv.weight_v"], before["model.decoder.model.0.conv.conv.weight_v"]
    )


def test_train_audio_folder_recipe_with_captions_fast_dev_run(tmp_path):
    from mgm.data.audio_io import write_wavs
    from mgm.data.tones import make_tones
    from mgm.pipelines import AudioPipeline
    from mgm.tokenizers import EncodecTokenizer

    wav, _ = make_tones(4, 1.0, 8000, seed=0)
    write_wavs({f"{name}/{i}.wav": wav[i] for i, name in enumerate(["a", "a", "b", "b"])}, 8000, tmp_path / "clips")
    (tmp_path / "clips" / "a" / "0.txt").write_text("a sustained note")
    torch.manual_seed(0)
    EncodecTokenizer.small(n_filters=4, dimension=8, bins=16, num_codebooks=2).save_pretrained(tmp_path / "codec")
    codec, pipe = str(tmp_path / "codec"), tmp_path / "pipe"
    args = [
        "fit", "--config", str(ROOT / "configs/audio/transformer_folder.yaml"),
        "--trainer.fast_dev_run=true", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
        f"--data.init_args.audio.init_args.root={tmp_path / 'clips'}", "--data.init_args.audio.init_args.seconds=1.0",
        f"--data.init_args.tokenizer={codec}", f"--data.init_args.cache={tmp_path / 'codes.safetensors'}",
        "--data.init_args.batch_size=2", "--data.init_args.val_fraction=0.25",
        "--model.init_args.model.init_args.codebook_sizes=[16, 16]", "--model.init_args.model.init_args.shape=[50]",
        "--model.init_args.model.init_args.dim=16", "--model.init_args.model.init_args.depth=1",
        "--model.init_args.model.init_args.num_classes=2", "--model.init_args.model.init_args.context_dim=16",
        "--model.init_args.text_encoder.init_args.dim=16", "--model.init_args.text_encoder.init_args.depth=1",
        f"--trainer.callbacks.init_args.directory={pipe}", f"--trainer.callbacks.init_args.tokenizer={codec}",
    ]  # fmt: skip
    train.main(args)
    loaded = AudioPipeline.from_pretrained(pipe)
    assert loaded.text_encoder is not None
    clips = loaded.generate(2, labels=[0, 1], texts="a sustained note", seconds=0.5, plan="joint", steps=2)
    assert clips.shape == (2, 1, 4000)


def test_generate_audio_sample_continue_infill(tiny_audio_pipeline, tmp_path, capsys):
    from mgm.data.audio_io import read_audio

    model = tiny_audio_pipeline.save_pretrained(tmp_path / "pipe")
    out = tmp_path / "out"
    common = ["--model", str(model), "--device", "cpu", "--out", str(out)]
    paths = generate.main(["audio", "--num", "3", "--seconds", "0.1", *common])
    assert [p.name for p in paths] == ["sample_000.wav", "sample_001.wav", "sample_002.wav"]
    clip, rate = read_audio(paths[0])
    assert rate == 8000 and clip.shape == (1, 800)
    assert str(paths[0]) in capsys.readouterr().out

    # Continue the first sample to 0.2 s with the MAGNeT plan, then infill a span of it.
    paths = generate.main(["audio", "continue", "--input", str(paths[0]), "--plan", "magnet", *common])
    assert read_audio(paths[0])[0].shape == (1, 1600)
    paths = generate.main(
        ["audio", "infill", "--input", str(paths[0]), "--start", "0.05", "--end", "0.1", "--steps", "2", "1",
         *common]
    )  # fmt: skip
    assert read_audio(paths[0])[0].shape == (1, 1600)
    # Group plans with ReCAP's cheap steps: the saved plan, and a plan named on the command line.
    for plan in ([], ["--plan", "magnet"]):
        reuse = ["--full-first", "1", "--cheap-per-full", "2", "--overwrite", *plan]
        assert len(generate.main(["audio", "--num", "2", *reuse, *common])) == 2


def test_generate_audio_bad_input_leaves_nothing(tiny_audio_pipeline, tmp_path, cli_error):
    model = tiny_audio_pipeline.save_pretrained(tmp_path / "pipe")
    out = tmp_path / "out"
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wav")
    common = ["--model", str(model), "--device", "cpu", "--out", str(out)]
    cli_error(generate.main, ["audio", "continue", "--input", str(tmp_path / "broken.wav"), *common], "broken.wav")
    cli_error(generate.main, ["audio", "infill", "--input", str(tmp_path / "broken.wav"), *common], "--start and --end")
    cli_error(generate.main, ["audio", "--seconds", "3", *common], "at most 0.2 s")
    cli_error(generate.main, ["audio", "--texts", "a low note", *common], "not text-conditioned")
    assert not out.exists() or not any(out.iterdir())


def test_generate_image_with_recap(tiny_image_pipeline, tmp_path, cli_error):
    model = tiny_image_pipeline.save_pretrained(tmp_path / "pipe")
    common = ["--model", str(model), "--device", "cpu", "--out", str(tmp_path / "out"), "--num", "3"]
    paths = generate.main(["image", "--method", "recap", "--full-first", "1", "--cheap-per-full", "2", *common])
    assert len(paths) == 4
    no_recap = ["image", "--cheap-per-full", "2", "--overwrite", *common]
    cli_error(generate.main, no_recap, r"method 'maskgit' got unknown option\(s\) \['cheap_per_full'\]")


def test_generate_image_from_an_ar_pipeline(tiny_vq, tmp_path, cli_error):
    from mgm.models import ARTransformer
    from mgm.pipelines import ARImagePipeline

    torch.manual_seed(0)
    model = ARTransformer(vocab_size=32, max_length=64, dim=32, depth=1, num_heads=2, num_classes=3)
    folder = ARImagePipeline(tiny_vq, model, class_names=["a", "b", "c"]).save_pretrained(tmp_path / "ar")
    common = ["--model", str(folder), "--device", "cpu", "--out", str(tmp_path / "out"), "--num", "2"]
    assert len(generate.main(["image", "--method", "sjd", "--window", "4", "--init", "above", *common])) == 3
    masked_method = ["image", "--method", "recap", "--overwrite", *common]
    cli_error(generate.main, masked_method, r"--method recap needs a masked pipeline \(ImagePipeline\)")
    inpaint = ["image", "inpaint", "--method", "sjd", "--overwrite", *common]
    cli_error(generate.main, inpaint, "an AR pipeline samples images; inpaint needs a masked or flexible-order AR")
    # Without --model, an AR method samples from the shipped AR pipeline.
    shipped = generate.main(["image", "--method", "ar", "--device", "cpu", "--out", str(tmp_path / "x"), "--num", "1"])
    assert len(shipped) == 2


def test_generate_image_from_a_flex_ar_pipeline_samples_and_edits(tiny_flex_ar_pipeline, tmp_path, cli_error):
    from mgm.pipelines.image_io import read_image, write_pngs

    folder = tiny_flex_ar_pipeline.save_pretrained(tmp_path / "flex")
    common = ["--model", str(folder), "--device", "cpu", "--num", "2"]
    out = tmp_path / "out"
    assert len(generate.main(["image", "--method", "arpg", "--num-steps", "5", "--out", str(out), *common])) == 3
    image = read_image(out / "sample_000.png")
    mask = torch.zeros(1, 16, 16)
    mask[:, :, 8:] = 1
    write_pngs({"mask.png": mask.expand(3, 16, 16)}, tmp_path)
    edit = ["image", "inpaint", "--input", str(out / "sample_000.png"), "--mask", str(tmp_path / "mask.png"),
            "--method", "lpd", "--out", str(tmp_path / "edit"), *common]  # fmt: skip
    [painted, _] = generate.main(edit)
    kept = read_image(painted)[:, :, :8]
    assert torch.equal(kept, image[:, :, :8]), "outside the mask the pixels are the input's"
    cli_error(generate.main, ["image", "--method", "sjd", "--out", str(tmp_path / "y"), *common],
              r"--method sjd needs an AR pipeline \(ARImagePipeline\); --model .* is not one")  # fmt: skip
    cli_error(generate.main, ["image", "--method", "arpg", "--choice-temperature", "1", "--out", str(tmp_path / "z"),
                              *common], r"unknown option\(s\) \['choice_temperature'\]")  # fmt: skip
    assert not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def test_generate_motion_end_to_end(tiny_motion_pipeline, tmp_path, cli_error):
    import numpy as np
    from PIL import Image

    model = tiny_motion_pipeline.save_pretrained(tmp_path / "pipe")
    common = ["--model", str(model), "--device", "cpu", "--out", str(tmp_path / "out")]
    paths = generate.main(["motion", "a person walks forward and waves", "--num", "2", "--seconds", "1",
                           "--steps-per-second", "3", *common])  # fmt: skip
    names = sorted(p.name for p in paths)
    assert names == ["sample_000.gif", "sample_000.npy", "sample_000_joints.npy", "sample_001.gif", "sample_001.npy",
                     "sample_001_joints.npy"]  # fmt: skip
    assert np.load(tmp_path / "out" / "sample_000.npy").shape == (20, 263)
    with Image.open(tmp_path / "out" / "sample_000.gif") as gif:
        assert gif.n_frames == 20
    # Edit the first motion's upper body; the lower body's features are kept (tested in the pipeline tests).
    given = str(tmp_path / "out" / "sample_000.npy")
    edited = generate.main(["motion", "someone waves", "--task", "edit-part", "--input", given, "--no-render",
                            "--overwrite", *common])  # fmt: skip
    assert [p.name for p in edited] == ["edit-part_000.npy", "edit-part_000_joints.npy"]
    cli_error(generate.main, ["motion", "walk", "--task", "inbetween", *common], "needs --input")
    cli_error(generate.main, ["motion", " ", "--overwrite", *common], "texts\\[0\\]")


TRAIN_REFUSALS = [
    pytest.param(["--trainer.max_steps", "-5"], "max_steps. must be a non-negative integer", id="max_steps-negative"),
    pytest.param(["--data.init_args.batch_size", "0"], r"batch_size=0: expected an integer >= 1", id="batch_size-0"),
    pytest.param(["--data.init_args.batch_size", "1.5"], r"batch_size.*1\.5", id="batch_size-float"),
    pytest.param(["--data.init_args.val_fraction", "1.5"], r"val_fraction=1\.5", id="val_fraction-above-1"),
    pytest.param(["--model.init_args.schedule", "nope"], r"schedule='nope' is not a known", id="schedule-unknown"),
    pytest.param(["--model.init_args.cond_drop_prob", "2"], r"cond_drop_prob=2", id="cond_drop_prob-2"),
    # the data's vocabulary is not the model's: refused in setup, after Lightning made its log folder
    pytest.param(["--data.init_args.vocab_size", "12"], r"token spec .* does not match", id="vocabulary-mismatch"),
    pytest.param(["--ckpt_path", "missing.ckpt"], r"ckpt_path='.*missing.ckpt': no such file", id="ckpt-missing"),
    pytest.param(["--ckpt_path", "{tmp}"], r"ckpt_path=.*: a folder", id="ckpt-folder"),
    pytest.param(["--ckpt_path", "{readme}"], r"ckpt_path=.*not a readable Lightning checkpoint", id="ckpt-not-one"),
    pytest.param(["--ckpt_path", "{pickle}"], r"ckpt_path=.*not a readable", id="ckpt-pickled-code"),
    pytest.param(["--ckpt_path", "{weights}"], r"ckpt_path=.*no 'state_dict'", id="ckpt-plain-tensors"),
    pytest.param(["--trainer.nonsense", "3"], r"unrecognized arguments", id="unknown-flag"),
]


@pytest.mark.parametrize("extra, match", TRAIN_REFUSALS)
def test_train_refuses_bad_values_with_one_line_and_leaves_nothing(extra, match, tmp_path, cli_error, monkeypatch):
    import pickle

    class Payload:  # unpickling this would run code: weights_only loading refuses it
        def __reduce__(self):
            return (print, ("unpickled",))

    (tmp_path / "code.ckpt").write_bytes(pickle.dumps({"state_dict": Payload()}))
    torch.save({"w": torch.zeros(2)}, tmp_path / "tensors.ckpt")
    names = {"{tmp}": tmp_path, "{readme}": ROOT / "README.md", "{pickle}": tmp_path / "code.ckpt",
             "{weights}": tmp_path / "tensors.ckpt"}  # fmt: skip
    extra = [str(names.get(a, a)) for a in extra]
    before = sorted(tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    common = ["fit", "--config", str(ROOT / "configs/markov_toy.yaml"), f"--trainer.default_root_dir={out}"]
    cli_error(train.main, [*common, "--trainer.max_steps", "2", *extra], match)
    assert sorted(tmp_path.rglob("*")) == before  # no lightning_logs, config.yaml or model left behind


def test_generate_image_in_batches_writes_the_samples_of_one_call(tiny_image_pipeline, tmp_path, capsys):
    """--batch-size splits the run (written batch by batch, memory of one batch) without changing it:
    the files hold the images of one pipe.generate(num) call, classes cycling on across batches."""
    from mgm.pipelines.image_io import read_image

    model = tiny_image_pipeline.save_pretrained(tmp_path / "pipe")
    out = tmp_path / "out"
    common = ["--num-steps", "2", "--device", "cpu", "--seed", "5"]
    paths = generate.main(
        ["image", "--model", str(model), "--num", "7", "--batch-size", "3", *common, "--out", str(out)]
    )
    assert sorted(p.name for p in paths) == [f"sample_{i:03d}.png" for i in range(7)] + ["sample_grid.png"]
    whole = tiny_image_pipeline.generate(7, seed=5, num_steps=2)
    for i in range(7):
        written = read_image(out / f"sample_{i:03d}.png")
        # PNG keeps 8 bits; the batches decode to pixels apart, so a value may round the other way
        assert float((written - whole[i].clamp(0, 1)).abs().max()) <= 1 / 255 + 1e-6, i
    assert read_image(out / "sample_grid.png").shape[1:] == (2 + 3 * 18, 2 + 3 * 18)  # 7 images, 3 a row
    capsys.readouterr()
