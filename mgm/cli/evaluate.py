"""``mgm-eval`` / ``python -m mgm.cli.evaluate``: generate samples (or read a folder), score them
against reference statistics, report NFE and wall time per sample; print a table, write JSON.

    mgm-eval image                                   # the shipped Shapes10 pipeline, 512 samples
    mgm-eval image --method recap --full-first 2 --cheap-per-full 2 --num 1024
    mgm-eval audio --plan magnet --encodec           # the shipped Tones8 pipeline, + EnCodec FAD
    mgm-eval audio --vggish vggish-10086976.pth      # + VGGish FAD, from weights you provide
    mgm-eval motion --num 256                        # the shipped Motions7 pipeline, HumanML3D metrics
    mgm-eval video                                   # the shipped MovingShapes pipeline, 512 clips
    mgm-eval video --given 4 --num 256               # predictions from the first 4 frames of real clips
    mgm-eval image --samples outputs/my_samples      # a folder (class sub-folders give labels)

Scores: the embedded judge's conditional accuracy (Tones8 also the exact pitch checker) and a
Frechet distance per feature extractor: the judge's features always, Inception (``--inception``,
FID; needs ``pip install 'mgm[eval]'`` and its weights) for images, the codec's encoder frame
embeddings (``--encodec``, fadtk's "encodec-emb") and VGGish's (``--vggish CHECKPOINT``: a state
dict of the released weights with torchvggish's keys, not fetched; pre-PCA embeddings averaged
over each clip's 0.96 s examples) for audio. Reference statistics come from
--reference-num held-out embedded samples (seed --reference-seed) or a --reference-folder, and
are cached as .npz in --cache-dir.

Motion: HumanML3D's measures on the embeddings of a text-motion evaluator (the shipped Motions7
one, or ``--evaluator DIR``): FID against the real clips' statistics, Diversity, R-precision
top-1/2/3 and MM-Dist (batches of 32), and the exact checker's action agreement. Each generated
motion takes the caption and length of one real held-out clip (seed --captions-seed); the same
scores of those real clips are reported beside (``real_*``): what a perfect model would get. A
folder of samples holds ``.npy`` features [F, 263], with captions in ``captions.json``
({"<name>": caption}).

Video: the shipped clip judge's conditional accuracy and a Frechet distance on its features (an
FVD analogue), and the exact MovingShapes checker's agreement (and its class and motion parts).
``--given F`` scores predictions: each clip continues the first F frames of a real held-out clip
(seed --context-seed), judged against that clip's class; a folder of samples holds GIFs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from mgm.checks import check_device
from mgm.cli.options import CLIParser, add_decode_options, cli_main, decode_options, positive_int
from mgm.cli.tasks import image_pipeline_class, load_pipeline, resolve_model
from mgm.decoding.registry import AR, FLEX_AR, MASKED
from mgm.io import check_output_file, check_output_folder

R_PRECISION_BATCH = 32  # = mgm.eval.suite.R_PRECISION_BATCH (not imported here: the parser stays light)


def build_parser() -> argparse.ArgumentParser:
    parser = CLIParser(prog="mgm-eval", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="modality", required=True)
    image = sub.add_parser("image", help="an ImagePipeline's samples (default: the shipped one), or a folder")
    image.add_argument("--inception", action="store_true", help="also FID on torchmetrics' Inception features")
    audio = sub.add_parser("audio", help="an AudioPipeline's clips (default: the shipped one), or a folder")
    audio.add_argument("--encodec", action="store_true", help="also FAD on the pipeline codec's encoder embeddings")
    audio.add_argument("--vggish", metavar="CHECKPOINT", help="also FAD on VGGish embeddings of weights you provide")
    motion = sub.add_parser("motion", help="a MotionPipeline's motions (default: the shipped one), or a folder")
    motion.add_argument("--evaluator", help="text-motion evaluator folder (default: the shipped Motions7 one)")
    motion.add_argument(
        "--captions-seed", type=int, default=3, help="seed of the real held-out clips giving captions and lengths"
    )
    video = sub.add_parser("video", help="a VideoPipeline's clips (default: the shipped one), or a folder of GIFs")
    video.add_argument("--given", type=int, default=0, help="score predictions from this many real first frames")
    video.add_argument("--context-seed", type=int, default=3, help="seed of the real clips whose frames are given")
    for p in (image, audio, motion, video):
        p.add_argument("--model", help="pipeline folder or hub id org/name (default: the shipped pipeline)")
        p.add_argument("--samples", help="score this folder of samples instead of generating")
        p.add_argument("--num", type=int, default=512, help="samples to generate")
        p.add_argument("--batch-size", type=positive_int, default=64)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--debug", action="store_true", help="show the traceback of an error")
        add_decode_options(p, (MASKED, AR, FLEX_AR) if p is image else (MASKED,))
        if p is not motion:
            p.add_argument("--judge", help="classifier folder (default: the shipped judge of the embedded data)")
        p.add_argument("--reference-num", type=int, default=2048, help="embedded real samples for the reference")
        p.add_argument("--reference-seed", type=int, default=2, help="seed of the embedded reference samples")
        p.add_argument("--reference-folder", help="real samples to take the reference statistics from instead")
        p.add_argument("--cache-dir", default="outputs/eval/reference", help="where reference statistics are kept")
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        p.add_argument(
            "--devices",
            type=positive_int,
            default=1,
            help="processes (one per GPU, or CPU processes) that each generate a share of the samples",
        )
        p.add_argument("--out", default="outputs/eval/report.json", help="JSON report")
        p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    return parser


def _check(args: argparse.Namespace) -> None:
    """Every argument checked before any model is loaded or any sample drawn."""
    for name in ("num", "batch_size", "reference_num"):
        value = getattr(args, name)
        if value < 2 if name != "batch_size" else value < 1:
            raise ValueError(
                f"--{name.replace('_', '-')} {value}: expected at least {1 if name == 'batch_size' else 2}"
            )
    check_output_file(args.out, "--out", args.overwrite)
    check_output_folder(args.cache_dir, "--cache-dir")
    check_device(args.device, "--device")
    if args.samples and args.model:
        raise ValueError("give --model (to generate) or --samples (to read), not both")
    if getattr(args, "given", 0) < 0 or (getattr(args, "given", 0) and args.samples):
        raise ValueError(f"--given {args.given}: expected a number of frames >= 1, with a pipeline (not --samples)")
    if args.modality == "motion" and not args.samples and args.num < R_PRECISION_BATCH:
        raise ValueError(
            f"--num {args.num}: motion R-precision ranks batches of {R_PRECISION_BATCH}; "
            f"expected at least {R_PRECISION_BATCH}"
        )
    if args.devices > 1 and args.samples:
        raise ValueError(f"--devices {args.devices} splits the generation; --samples reads a folder in one process")
    resolve_model(args)
    for name in ("samples", "reference_folder", "judge", "model", "evaluator"):
        folder = getattr(args, name, None)
        if folder and not Path(folder).is_dir():
            raise ValueError(f"--{name.replace('_', '-')} {folder}: no such folder")
    vggish = getattr(args, "vggish", None)
    if vggish and not Path(vggish).is_file():
        raise ValueError(f"--vggish {vggish}: no such file")
    if args.modality == "image":
        image_pipeline_class(args)  # a --method of another kind than --model's pipeline fails here


def _load(args: argparse.Namespace):
    """(pipeline or None, evaluation) for the modality."""
    from mgm.eval.suite import AudioEvaluation, ImageEvaluation, MotionEvaluation, VideoEvaluation
    from mgm.pipelines import AudioPipeline, ImagePipeline, MotionPipeline, VideoPipeline

    pipeline_class = {"image": ImagePipeline, "audio": AudioPipeline, "motion": MotionPipeline,
                      "video": VideoPipeline}[args.modality]  # fmt: skip
    if args.modality == "image":
        pipeline_class = image_pipeline_class(args)
    pipe = None
    if not args.samples or (args.modality == "audio" and args.encodec):
        pipe = load_pipeline(pipeline_class, args)
        pipe.split_options(decode_options(args))  # bad decode options fail before the judge loads
    if args.modality == "image":
        size = pipe.image_size if pipe is not None else 32
        evaluation = ImageEvaluation(args.judge, image_size=size, inception=args.inception)
    elif args.modality == "motion":
        evaluation = MotionEvaluation(args.evaluator)
    elif args.modality == "video":
        frames, size = (pipe.num_frames, pipe.image_size) if pipe is not None else (16, 32)
        if pipe is not None and args.given >= frames:
            raise ValueError(f"--given {args.given}: leaves nothing to predict in the model's {frames} frames")
        evaluation = VideoEvaluation(args.judge, num_frames=frames, image_size=size)
    else:
        vggish = None
        if args.vggish:
            from mgm.eval.vggish import VGGishEmbedder

            try:
                vggish = VGGishEmbedder.from_checkpoint(args.vggish).to(args.device)
            except ValueError as e:
                raise ValueError(f"--vggish {e}") from e
        seconds = pipe.max_seconds if pipe is not None else 2.0
        codec = pipe.tokenizer if args.encodec else None
        evaluation = AudioEvaluation(args.judge, seconds=seconds, codec=codec, vggish=vggish)
    return pipe, evaluation


def _generate(pipe, args: argparse.Namespace, evaluation, ranks) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(this rank's samples on the CPU, their labels, its timing) of --num samples cycled over the
    classes: its block of whole batches (``mgm.parallel``), the same samples in any number of processes."""
    decode = decode_options(args)
    labels = torch.arange(args.num) % pipe.num_classes if pipe.num_classes else None
    block = ranks.blocks(args.num, args.batch_size)
    labels = None if labels is None else labels[block.start : block.stop]
    timing = {"decode_s": 0.0, "total_s": 0.0, "passes": 0.0, "compute": 0.0, "batches": 0}
    if not block:
        return torch.zeros(0), labels, timing
    call = dict(seed=args.seed, batch_size=args.batch_size, progress=ranks.is_main, first_index=block.start, **decode)
    given = getattr(args, "given", 0)
    if given:  # predictions: the first frames of real held-out clips, one per sample, of the cycled labels
        from mgm.data.moving_shapes import make_clips

        real = make_clips(args.num, pipe.num_frames, pipe.image_size, args.context_seed, torch.arange(args.num)
                          % pipe.num_classes).clips[block.start : block.stop, :given]  # fmt: skip
    start = time.perf_counter()
    if given:
        result = pipe.predict_codes(real.to(pipe.device), labels=labels, **call)
    else:
        result = pipe.generate_codes(len(block), labels=labels, **call)
    timing["decode_s"] = time.perf_counter() - start
    samples = pipe.tokenizer.decode(result.codes).cpu()
    timing["total_s"] = time.perf_counter() - start
    if args.modality == "audio" and pipe.sample_rate != evaluation.sample_rate:
        import torchaudio

        samples = torchaudio.functional.resample(samples, pipe.sample_rate, evaluation.sample_rate)
    timing.update(passes=float(result.passes_per_sample().double().sum()), compute=result.compute,
                  batches=-(-len(block) // args.batch_size))  # fmt: skip
    return samples, labels, timing


def _merged_timing(pipe, args: argparse.Namespace, timings: list[dict]) -> dict:
    """The run's timing from every rank's: passes per sample over all samples, compute per batch,
    wall time per sample of the slowest rank (the ranks run at once)."""
    timing = {
        "nfe_per_sample": sum(t["passes"] for t in timings) / args.num,
        "compute_full_passes_per_sample": sum(t["compute"] for t in timings) / sum(t["batches"] for t in timings),
        "ms_per_sample_decoding": 1000 * max(t["decode_s"] for t in timings) / args.num,
        "ms_per_sample_with_tokenizer": 1000 * max(t["total_s"] for t in timings) / args.num,
        "settings": pipe.settings.update(**decode_options(args)).to_config(),
    }
    if pipe.decoder_kind == AR:  # AR / SJD passes run on a KV cache over a few tokens: no full-pass equivalent
        del timing["compute_full_passes_per_sample"]
    return timing


def _generate_motion(pipe, args: argparse.Namespace, ranks):
    """(generated MotionSamples on the CPU, labels, timing, the real clips) for --num real held-out
    clips: one motion per clip, for its caption, at its length (rounded down to whole tokens and cut
    to the longest the model takes). Clips of one length are decoded together (seed --seed + tokens);
    with several ranks each decodes its block of every length's batches, and rank 0 gathers the
    motions (None on the other ranks)."""
    from mgm.data.motion_features import FPS
    from mgm.data.motions import make_motions
    from mgm.eval.suite import MotionSamples

    decode = decode_options(args)
    clips = make_motions(args.num, seed=args.captions_seed)
    downsample = pipe.tokenizer.downsample
    tokens = (clips.lengths.clamp(max=pipe.tokenizer.frames_for_tokens(pipe.max_tokens)) // downsample).clamp(min=1)
    generated = torch.zeros(args.num, int(tokens.max()) * downsample, clips.features.shape[-1])
    mine = []  # the clips this rank decoded
    timing = {"decode_s": 0.0, "total_s": 0.0, "passes": 0.0, "compute": 0.0, "batches": 0}
    for n in tokens.unique().tolist():
        group = (tokens == n).nonzero()[:, 0]
        block = ranks.blocks(len(group), args.batch_size)
        if not block:
            continue
        rows = group[block.start : block.stop]
        frames = n * downsample
        captions = [clips.captions[i] for i in rows.tolist()]
        start = time.perf_counter()
        result = pipe.generate_codes(
            texts=captions, seconds=frames / FPS, seed=args.seed + n, batch_size=args.batch_size,
            first_index=block.start, **decode,
        )  # fmt: skip
        timing["decode_s"] += time.perf_counter() - start
        generated[rows, :frames] = pipe.features(result.codes).cpu()
        timing["total_s"] += time.perf_counter() - start
        mine.append(rows)
        # Sequential passes per clip (they differ per clip under the adaptive rules); compute per batch.
        timing["passes"] += float(result.passes_per_sample().double().sum())
        timing["compute"] += result.compute
        timing["batches"] += -(-len(rows) // args.batch_size)
    mine = torch.cat(mine) if mine else torch.zeros(0, dtype=torch.long)
    parts, timings = ranks.gather((mine, generated[mine])), ranks.gather(timing)
    if not ranks.is_main:
        return None
    for rows, motions in parts:
        generated[rows] = motions
    timing = {"captions": f"real Motions7 clips, seed {args.captions_seed}", **_merged_timing(pipe, args, timings)}
    real = MotionSamples(clips.features, clips.lengths, clips.captions)
    return MotionSamples(generated, tokens * downsample, clips.captions), clips.labels, timing, real


def evaluate(args: argparse.Namespace) -> dict | None:
    """The report (rank 0; None on the other ranks of a --devices run)."""
    _check(args)
    from mgm.parallel import launch

    ranks = launch(args.devices, args.device)
    args.device = ranks.device
    torch.set_grad_enabled(False)
    pipe, evaluation = _load(args)
    real = None
    if args.samples:
        samples, labels = evaluation.read_samples(args.samples)
        timing = {}
    elif args.modality == "motion":
        generated = _generate_motion(pipe, args, ranks)
        if generated is None:
            return None
        samples, labels, timing, real = generated
    else:
        samples, labels, rank_timing = _generate(pipe, args, evaluation, ranks)
        names = list(evaluation.extractors)
        shard = evaluation.shard_scores(samples, labels, names) if len(samples) else {"count": 0}
        shards, timings = ranks.gather(shard), ranks.gather(rank_timing)
        if not ranks.is_main:
            return None
        timing = _merged_timing(pipe, args, timings)
    references = {
        name: evaluation.reference(name, args.reference_num, args.reference_seed, args.cache_dir, args.reference_folder)
        for name in evaluation.extractors
    }
    if args.samples or args.modality == "motion":
        scores = evaluation.score(samples, labels, references)
    else:
        scores = evaluation.merge_scores(shards, references)
    if real is not None:  # the real clips the captions came from: what a perfect model would score
        scores.update({f"real_{k}": v for k, v in evaluation.score(real, labels, references).items()})
    num_samples = len(samples) if args.samples or args.modality == "motion" else args.num
    cpu = platform.processor() or platform.machine()
    device = (
        torch.cuda.get_device_name()
        if str(args.device).startswith("cuda")
        else f"{cpu}, {torch.get_num_threads()} threads"
    )
    report = {
        "modality": args.modality,
        "source": args.samples or (args.model or "shipped pipeline"),
        "num_samples": num_samples,
        "processes": args.devices,
        "reference": args.reference_folder or f"embedded, {args.reference_num} samples, seed {args.reference_seed}",
        "machine": f"{device}, torch {torch.__version__}",
        **timing,
        "scores": scores,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out)
    print(_table(report))
    print(out)
    return report


def _table(report: dict) -> str:
    rows = [(k, v) for k, v in report.items() if k not in ("scores", "settings")] + list(report["scores"].items())
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> dict:
    return cli_main(evaluate, build_parser(), argv)


if __name__ == "__main__":
    main()
