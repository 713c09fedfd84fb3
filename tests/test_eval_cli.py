import json

import pytest
import torch

from mgm.cli import evaluate


def test_eval_image_generates_scores_and_caches_the_reference(tiny_image_pipeline, tmp_path):
    model = tiny_image_pipeline.save_pretrained(tmp_path / "pipe")
    cache, out = tmp_path / "cache", tmp_path / "report.json"
    args = ["image", "--model", str(model), "--num", "12", "--batch-size", "5", "--reference-num", "20",
            "--cache-dir", str(cache), "--out", str(out), "--device", "cpu"]  # fmt: skip
    report = evaluate.main(args)
    assert json.loads(out.read_text()) == report
    assert report["num_samples"] == 12 and report["nfe_per_sample"] == tiny_image_pipeline.settings.options["num_steps"]
    assert 0 <= report["scores"]["judge_accuracy"] <= 1 and report["scores"]["frechet_judge"] > 0
    [cached] = cache.iterdir()
    stamp = cached.stat().st_mtime_ns
    # A second run with ReCAP reuses the cached reference and reports its smaller compute.
    again = evaluate.main([*args, "--overwrite", "--method", "recap", "--full-first", "1", "--cheap-per-full", "3"])
    assert cached.stat().st_mtime_ns == stamp and len(list(cache.iterdir())) == 1
    assert again["compute_full_passes_per_sample"] < again["nfe_per_sample"]


def test_eval_image_with_an_ar_pipeline_ar_and_sjd(tiny_vq, tmp_path, cli_error):
    from mgm.models import ARTransformer
    from mgm.pipelines import ARImagePipeline

    torch.manual_seed(0)
    model = ARTransformer(vocab_size=32, max_length=64, dim=32, depth=1, num_heads=2, num_classes=3)
    folder = ARImagePipeline(tiny_vq, model, {"method": "sjd", "window": 8}, ["a", "b", "c"]).save_pretrained(
        tmp_path / "ar"
    )
    common = ["image", "--model", str(folder), "--num", "6", "--reference-num", "8", "--device", "cpu",
              "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r.json"), "--overwrite"]  # fmt: skip
    ar = evaluate.main([*common, "--method", "ar"])
    assert ar["nfe_per_sample"] == 64 and "compute_full_passes_per_sample" not in ar
    sjd = evaluate.main([*common, "--method", "sjd", "--window", "4"])
    assert 1 <= sjd["nfe_per_sample"] <= 64 and 0 <= sjd["scores"]["judge_accuracy"] <= 1
    cli_error(evaluate.main, [*common, "--method", "recap"], r"--method recap needs a masked pipeline")
    not_ar = ["image", "--method", "ar", "--model", str(tmp_path), "--out", str(tmp_path / "x.json")]
    cli_error(evaluate.main, not_ar, "needs an AR pipeline")


def test_eval_image_with_a_flex_ar_pipeline(tiny_flex_ar_pipeline, tmp_path, cli_error):
    folder = tiny_flex_ar_pipeline.save_pretrained(tmp_path / "flex")
    common = ["image", "--model", str(folder), "--num", "6", "--reference-num", "8", "--device", "cpu",
              "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r.json"), "--overwrite"]  # fmt: skip
    for method, steps in (("arpg", 5), ("lpd", 3)):
        report = evaluate.main([*common, "--method", method, "--num-steps", str(steps)])
        assert report["nfe_per_sample"] == steps and 0 <= report["scores"]["judge_accuracy"] <= 1
        assert report["compute_full_passes_per_sample"] < steps, "cached passes over a few rows"
    cli_error(evaluate.main, [*common, "--method", "maskgit"], "needs a masked pipeline")


def test_eval_reads_a_folder_with_class_subfolders(tmp_path):
    from mgm.data.shapes import CLASSES, make_shapes
    from mgm.pipelines.image_io import write_pngs

    labels = torch.tensor([0, 0, 3, 3, 3])
    images, _ = make_shapes(5, 32, seed=7, labels=labels)
    write_pngs({f"{CLASSES[int(c)]}/{i}.png": x for i, (x, c) in enumerate(zip(images, labels))}, tmp_path / "s")
    report = evaluate.main(["image", "--samples", str(tmp_path / "s"), "--reference-num", "64",
                            "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r.json")])  # fmt: skip
    # Real Shapes10 images under their class names: the shipped judge labels them correctly.
    assert report["num_samples"] == 5 and report["scores"]["judge_accuracy"] == 1.0
    assert "nfe_per_sample" not in report


def test_eval_audio_with_the_codec_embedding_against_a_reference_folder(tiny_audio_pipeline, tmp_path):
    from mgm.data.audio_io import write_wavs
    from mgm.data.tones import make_tones

    model = tiny_audio_pipeline.save_pretrained(tmp_path / "pipe")
    real, _ = make_tones(8, 0.3, 8000, seed=2)  # the tiny pipeline's clips are 0.2 s
    write_wavs({f"{i}.wav": clip for i, clip in enumerate(real)}, 8000, tmp_path / "real")
    paths = ["--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r.json")]
    report = evaluate.main(["audio", "--model", str(model), "--num", "6", "--encodec", "--reference-folder",
                            str(tmp_path / "real"), *paths, "--device", "cpu"])  # fmt: skip
    scores = report["scores"]
    assert report["reference"] == str(tmp_path / "real") and len(list((tmp_path / "c").iterdir())) == 2
    assert set(scores) == {"judge_accuracy", "pitch_checker_agreement", "frechet_judge", "frechet_encodec"}


@pytest.mark.parametrize(
    "extra, match",
    [(["--num", "1"], "--num 1"), (["--samples", "nowhere"], "--samples nowhere: no such folder"),
     (["--batch-size", "0"], "--batch-size: 0: expected an integer >= 1")],
)  # fmt: skip
def test_eval_bad_arguments_fail_before_any_work(tmp_path, extra, match, cli_error):
    out = tmp_path / "r.json"
    cli_error(evaluate.main, ["image", "--out", str(out), "--cache-dir", str(tmp_path / "c"), *extra], match)
    assert not out.exists() and not (tmp_path / "c").exists()
    out.write_text("{}")
    cli_error(evaluate.main, ["image", "--out", str(out)], "exists")
