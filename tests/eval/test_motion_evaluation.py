import json

import numpy as np
import pytest
import torch

from mgm.cli import evaluate
from mgm.data.motions import CLASSES, make_motions
from mgm.eval.suite import MotionEvaluation, MotionSamples, batched_statistics

HUMANML3D_SCORES = {"fid", "diversity", "r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist"}


def test_eval_motion_generates_with_the_shipped_pipeline(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "report.json"
    args = ["motion", "--num", "32", "--batch-size", "16", "--reference-num", "64", "--num-steps", "4",
            "--cache-dir", str(cache), "--out", str(out), "--device", "cpu"]  # fmt: skip
    report = evaluate.main(args)
    assert json.loads(out.read_text()) == report
    scores = report["scores"]
    assert set(scores) == HUMANML3D_SCORES | {"action_agreement"} | {
        f"real_{k}" for k in HUMANML3D_SCORES | {"action_agreement"}
    }
    assert report["num_samples"] == 32 and report["nfe_per_sample"] == 4 and report["ms_per_sample_decoding"] > 0
    assert report["captions"] == "real Motions7 clips, seed 3"
    # The real clips the captions came from: the checker finds every action, retrieval far above chance.
    # Thresholds are 4 binomial SEs, sqrt(p (1 - p) / 32), below the measured figures: real top-3
    # 0.906 (SE 0.052), generated action agreement 0.938 (SE 0.043).
    assert scores["real_action_agreement"] == 1.0 and scores["real_r_precision_top3"] >= 0.70
    assert scores["action_agreement"] >= 0.76 and scores["fid"] > 0 and scores["mm_dist"] > 0
    [cached] = cache.iterdir()
    assert cached.name.startswith("motion_evaluator_") and cached.name.endswith("_embedded_64_seed2.npz")


def test_eval_motion_reads_a_folder_with_captions(tmp_path):
    clips = make_motions(32, seed=9)
    folder = tmp_path / "samples"
    captions = {}
    for i, (features, length, label) in enumerate(zip(clips.features, clips.lengths, clips.labels)):
        name = f"{CLASSES[int(label)]}/clip_{i:02d}"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{name}.npy", features[:length].numpy())
        np.save(folder / f"{name}_joints.npy", np.zeros((int(length), 22, 3), np.float32))  # skipped
        captions[name] = clips.captions[i]
    (folder / "captions.json").write_text(json.dumps(captions))
    paths = ["--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r.json"), "--reference-num", "64"]
    report = evaluate.main(["motion", "--samples", str(folder), *paths])
    scores = report["scores"]
    assert report["num_samples"] == 32 and "nfe_per_sample" not in report
    assert set(scores) == HUMANML3D_SCORES | {"action_agreement"} and scores["action_agreement"] == 1.0
    assert scores["r_precision_top3"] >= 0.76  # measured 0.938 on 32: 4 SEs (0.043 each) below
    # Without captions.json: FID and diversity only.
    (folder / "captions.json").unlink()
    report = evaluate.main(["motion", "--samples", str(folder), *paths, "--overwrite"])
    assert set(report["scores"]) == {"fid", "diversity", "action_agreement"}


def test_motion_samples_and_scores_check_their_input():
    evaluation = MotionEvaluation()
    clips = make_motions(4, seed=1)
    with pytest.raises(ValueError, match="captions: got 3 for 4 motions"):
        MotionSamples(clips.features, clips.lengths, clips.captions[:3])
    with pytest.raises(ValueError, match=r"features: got shape \(4, \d+\); expected"):
        MotionSamples(clips.features[..., 0], clips.lengths)
    samples = MotionSamples(clips.features, clips.lengths, clips.captions)
    assert [len(chunk) for chunk in samples.split(3)] == [3, 1]
    scores = evaluation.score(samples, clips.labels, {})
    assert set(scores) == {"action_agreement", "diversity", "mm_dist"}  # under 32 clips: no R-precision


@pytest.mark.parametrize(
    "extra, match",
    [(["--num", "8"], "--num 8: motion R-precision ranks batches of 32"),
     (["--evaluator", "nowhere"], "--evaluator nowhere: no such folder"),
     (["--samples", "nowhere"], "--samples nowhere: no such folder")],
)  # fmt: skip
def test_eval_motion_bad_arguments_fail_before_any_work(tmp_path, extra, match, cli_error):
    out = tmp_path / "r.json"
    cli_error(evaluate.main, ["motion", "--out", str(out), "--cache-dir", str(tmp_path / "c"), *extra], match)
    assert not out.exists() and not (tmp_path / "c").exists()
    with pytest.raises(SystemExit):  # motion has --evaluator, not --judge
        evaluate.main(["motion", "--judge", str(tmp_path)])


def test_scores_of_real_and_shuffled_clips():
    """Real clips against a reference of other real clips: small FID; with the captions shuffled, R-precision
    falls to about chance while FID and diversity (motion only) do not move."""
    evaluation = MotionEvaluation()
    clips = make_motions(128, seed=11)
    samples = MotionSamples(clips.features, clips.lengths, clips.captions)
    order = torch.randperm(128, generator=torch.Generator().manual_seed(0)).tolist()
    shuffled = MotionSamples(clips.features, clips.lengths, [clips.captions[i] for i in order])
    real = batched_statistics(evaluation.extractors["evaluator"][0], MotionSamples(*_clips(256, 12)))
    right, wrong = (
        evaluation.score(samples, None, {"evaluator": real}),
        evaluation.score(shuffled, None, {"evaluator": real}),
    )
    assert right["fid"] == wrong["fid"] and right["diversity"] == wrong["diversity"]
    # Measured top-1 0.586 on 128 queries: 4 SEs (sqrt(p (1 - p) / 128) = 0.044) below is 0.41.
    assert right["r_precision_top1"] >= 0.41 and wrong["r_precision_top1"] < 0.15
    assert right["mm_dist"] < wrong["mm_dist"]


def _clips(num: int, seed: int):
    clips = make_motions(num, seed=seed)
    return clips.features, clips.lengths, clips.captions
