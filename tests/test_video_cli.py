"""``generate.py video`` and ``mgm-eval video`` on a tiny VideoPipeline."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from mgm.cli import evaluate, generate
from mgm.eval.clip_classifier import ClipClassifier
from mgm.pipelines.video_io import read_video, write_videos


@pytest.fixture
def video_model(tiny_video_pipeline, tmp_path):
    return str(tiny_video_pipeline.save_pretrained(tmp_path / "pipe"))


def test_generate_video_sample_predict_interpolate(video_model, tiny_video_pipeline, tmp_path, capsys, cli_error):
    out = tmp_path / "out"
    common = ["--model", video_model, "--device", "cpu", "--num-steps", "2", "--out", str(out)]
    paths = generate.main(["video", "--num", "3", "--labels", "a", *common])
    assert sorted(p.name for p in paths) == ["sample_000.gif", "sample_001.gif", "sample_002.gif", "sample_grid.gif"]
    assert capsys.readouterr().out.split() == [str(p) for p in paths]
    clip = read_video(out / "sample_001.gif")
    assert clip.shape == (4, 3, 16, 16)
    expected = tiny_video_pipeline.generate(3, labels="a", num_steps=2, seed=0)[1]
    assert (clip - expected).abs().mean() < 0.02  # 256 palette colours for a random VQ's noisy output
    cli_error(generate.main, ["video", "--num", "3", "--labels", "a", *common], "--overwrite")

    from mgm.data.moving_shapes import make_clips

    given = write_videos({"real.gif": make_clips(1, num_frames=4, image_size=16, seed=2).clips[0]}, tmp_path)[0]
    [predicted] = generate.main(["video", "predict", "--input", str(given), "--given", "2", *common])
    # The given frames come back as given (up to the new file's palette); the random model's are noise.
    back, source = read_video(predicted), read_video(given)
    assert (back[:2] - source[:2]).abs().mean() < 0.01 and (back[2:] - source[2:]).abs().mean() > 0.1
    [between] = generate.main(["video", "interpolate", "--input", str(given), "--keep-end", "2", *common])
    back, source = read_video(between), read_video(given)
    assert (back[:1] - source[:1]).abs().mean() < 0.01 and (back[2:] - source[2:]).abs().mean() < 0.01
    assert (back[1] - source[1]).abs().mean() > 0.1


def test_generate_video_bad_input_leaves_nothing(video_model, tmp_path, cli_error):
    out = tmp_path / "out"
    common = ["--model", video_model, "--device", "cpu", "--out", str(out)]
    write_videos({"short.gif": torch.rand(2, 3, 16, 16)}, tmp_path)
    cli_error(generate.main, ["video", "predict", *common], "needs --input")
    cli_error(generate.main, ["video", "predict", "--input", str(tmp_path / "short.gif"), "--given", "3", *common],
              "--given 3")  # fmt: skip
    cli_error(generate.main, ["video", "interpolate", "--input", str(tmp_path / "short.gif"), "--keep-end", "2",
                              *common], "--keep-start 1 --keep-end 2")  # fmt: skip
    cli_error(generate.main, ["video", "--labels", "zz", *common], "labels: 'zz'")
    cli_error(generate.main, ["video", "--temperature", "-1", *common], "temperature=-1")
    if shutil.which("ffmpeg") is None:
        cli_error(generate.main, ["video", "--mp4", *common], "--mp4 needs an ffmpeg")
    assert not out.exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs an ffmpeg binary")
def test_generate_video_writes_mp4_through_ffmpeg(video_model, tmp_path):
    paths = generate.main(["video", "--num", "1", "--mp4", "--model", video_model, "--device", "cpu", "--num-steps",
                           "2", "--out", str(tmp_path / "out")])  # fmt: skip
    mp4 = [p for p in paths if p.suffix == ".mp4"]
    assert len(mp4) == 2 and all(p.stat().st_size > 0 for p in mp4)


def test_eval_video_generates_and_predicts(video_model, tmp_path):
    torch.manual_seed(0)
    judge = ClipClassifier(num_classes=3, width=8).save_pretrained(tmp_path / "judge")
    common = ["--model", video_model, "--judge", str(judge), "--num", "6", "--batch-size", "4",
              "--reference-num", "8", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu",
              "--num-steps", "2"]  # fmt: skip
    report = evaluate.main(["video", *common, "--out", str(tmp_path / "gen.json")])
    assert json.loads((tmp_path / "gen.json").read_text()) == report
    scores = report["scores"]
    assert report["nfe_per_sample"] == 2 and report["ms_per_sample_decoding"] > 0
    for key in ("judge_accuracy", "checker_agreement", "checker_classes", "checker_motion"):
        assert 0 <= scores[key] <= 1
    assert scores["frechet_judge"] > 0
    predicted = evaluate.main(["video", *common, "--given", "2", "--out", str(tmp_path / "pred.json")])
    assert predicted["scores"].keys() == scores.keys()


def test_eval_video_reads_a_folder_of_gifs_and_scores_real_clips_as_valid(tmp_path):
    from mgm.data.moving_shapes import make_clips

    made = make_clips(6, num_frames=4, image_size=16, seed=5, labels=torch.tensor([0, 1, 2, 0, 1, 2]))
    names = ["disk", "square", "triangle"]
    write_videos({f"{names[int(k)]}/clip_{i}.gif": clip for i, (clip, k) in enumerate(zip(made.clips, made.labels))},
                 tmp_path / "clips")  # fmt: skip
    torch.manual_seed(0)
    judge = ClipClassifier(num_classes=10, width=8).save_pretrained(tmp_path / "judge")
    report = evaluate.main(["video", "--samples", str(tmp_path / "clips"), "--judge", str(judge),
                            "--reference-num", "8", "--cache-dir", str(tmp_path / "cache"),
                            "--out", str(tmp_path / "r.json")])  # fmt: skip
    assert report["num_samples"] == 6 and report["scores"]["checker_agreement"] == 1.0


def test_eval_video_bad_arguments_fail_before_any_work(video_model, tmp_path, cli_error):
    out = tmp_path / "r.json"
    cli_error(evaluate.main, ["video", "--model", video_model, "--given", "-1", "--out", str(out)], "--given -1")
    cli_error(evaluate.main, ["video", "--samples", str(tmp_path), "--given", "2", "--out", str(out)], "--given 2")
    assert not out.exists()


def test_train_video_recipes_fast_dev_run(tiny_vq, tmp_path):
    """The three video recipes on tiny data: the frame VQ, the windowed transformer writing a
    VideoPipeline (with given-frame training), and the clip judge."""
    from mgm.cli import train
    from mgm.pipelines import VideoPipeline

    root = Path(__file__).resolve().parents[1] / "configs" / "video"
    common = ["--trainer.fast_dev_run=true", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"]
    vq = [
        "--model.init_args.tokenizer.init_args.vq.init_args.sample_size=16",
        "--model.init_args.tokenizer.init_args.vq.init_args.block_out_channels=[8, 16]",
        "--model.init_args.tokenizer.init_args.vq.init_args.down_block_types=[DownEncoderBlock2D, DownEncoderBlock2D]",
        "--model.init_args.tokenizer.init_args.vq.init_args.up_block_types=[UpDecoderBlock2D, UpDecoderBlock2D]",
        "--data.init_args.num_clips=8", "--data.init_args.num_frames=4", "--data.init_args.image_size=16",
        "--data.init_args.batch_size=8", "--trainer.callbacks.init_args.directory=" + str(tmp_path / "vq"),
    ]  # fmt: skip
    train.main(["fit", "--config", str(root / "vq_moving_shapes.yaml"), *common, *vq])
    assert (tmp_path / "vq" / "config.json").is_file()

    tok = str(tiny_vq.save_pretrained(tmp_path / "tiny_vq"))
    transformer = [
        "--model.init_args.model.init_args.codebook_sizes=[32]", "--model.init_args.model.init_args.shape=[4, 8, 8]",
        "--model.init_args.model.init_args.dim=32", "--model.init_args.model.init_args.depth=2",
        "--model.init_args.model.init_args.num_heads=2",
        "--model.init_args.model.init_args.windows=[[1, 8, 8], [4, 4, 4]]",
        "--model.init_args.given_slices=[1, 2]", f"--data.init_args.tokenizer={tok}",
        f"--data.init_args.cache={tmp_path / 'codes.safetensors'}", "--data.init_args.videos.init_args.num_clips=16",
        "--data.init_args.videos.init_args.num_frames=4", "--data.init_args.videos.init_args.image_size=16",
        "--data.init_args.batch_size=4", f"--trainer.callbacks.init_args.directory={tmp_path / 'pipe'}",
        f"--trainer.callbacks.init_args.tokenizer={tok}",
        "--trainer.callbacks.init_args.tokenizer_options={num_frames: 4}",
    ]  # fmt: skip
    train.main(["fit", "--config", str(root / "transformer_moving_shapes.yaml"), *common, *transformer])
    pipe = VideoPipeline.from_pretrained(tmp_path / "pipe")
    assert pipe.num_frames == 4 and pipe.transformer.config["windows"] == [[1, 8, 8], [4, 4, 4]]
    assert pipe.predict(torch.rand(1, 1, 3, 16, 16), num_steps=2).shape == (1, 4, 3, 16, 16)

    judge = [
        "--data.init_args.num_clips=8", "--data.init_args.num_frames=4", "--data.init_args.image_size=16",
        "--data.init_args.batch_size=4", "--model.init_args.classifier.init_args.width=8",
        "--trainer.callbacks.init_args.directory=" + str(tmp_path / "judge"),
    ]  # fmt: skip
    train.main(["fit", "--config", str(root / "classifier_moving_shapes.yaml"), *common, *judge])
    assert ClipClassifier.from_pretrained(tmp_path / "judge")(torch.rand(2, 4, 3, 16, 16)).shape == (2, 10)
