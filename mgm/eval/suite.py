"""One evaluation per modality: reference statistics, extractors and scores behind ``mgm-eval``.

An evaluation knows its modality's embedded reference data, how to read samples from a folder,
its feature extractors (name -> samples [M, ...] -> features [M', F]) and its label scores (the
judge's conditional accuracy; for Tones8 also the exact pitch checker; for Motions7 the exact
action checker). Decoders and pipelines stay modality-free; this module is one of the edges that
knows images from audio and motion.

Motion samples are ``MotionSamples`` (features of different lengths, and the captions they were
made for); its scores are HumanML3D's, on a text-motion evaluator's embeddings
(``mgm.eval.text_motion``): FID, Diversity, R-precision top-1/2/3 and MM-Dist.

Reference statistics are computed once per (extractor weights, source, number, seed) and cached
as ``.npz`` in ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from mgm.eval.frechet import FeatureStatistics
from mgm.eval.image_quality import classify
from mgm.io import weights_fingerprint

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
MOTION_SUFFIXES = (".npy",)
MOTION_CAPTIONS_FILE = "captions.json"  # in a folder of motions: {"<path without .npy>": caption}
R_PRECISION_BATCH = 32  # HumanML3D's: each motion ranks the 32 captions of its batch
DIVERSITY_PAIRS = 300  # HumanML3D's diversity_times


def batched_statistics(extract: Callable, samples: torch.Tensor, batch_size: int = 256) -> FeatureStatistics:
    stats = FeatureStatistics()
    with torch.no_grad():
        for chunk in samples.split(batch_size):
            stats.update(extract(chunk))
    return stats


def _files_with_labels(folder: Path, suffixes: tuple[str, ...], classes: tuple[str, ...]):
    """Files under ``folder`` (recursively) and their labels: the class index of each file's parent
    folder name when every file sits in a folder named after a class, else None."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of samples")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and not p.name.endswith("_joints.npy"))
    if not files:
        raise ValueError(f"{folder}: no {'/'.join(suffixes)} files")
    parents = [p.parent.name for p in files]
    if all(name in classes for name in parents):
        return files, torch.tensor([classes.index(name) for name in parents])
    return files, None


class Evaluation:
    """Base: subclasses set ``modality``, ``classes`` and implement the modality hooks."""

    modality: str
    classes: tuple[str, ...]

    def __init__(self, judge: torch.nn.Module):
        self.judge = judge.eval()
        self.extractors: dict[str, tuple[Callable, str]] = {
            "judge": (self._judge_features, weights_fingerprint(judge)[:10])
        }

    def _judge_features(self, samples: torch.Tensor) -> torch.Tensor:
        return classify(self.judge, samples)[1]

    def add_extractor(self, name: str, extract: Callable, digest: str) -> None:
        self.extractors[name] = (extract, digest)

    # -- modality hooks -------------------------------------------------------------------------

    def real_samples(self, num: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def read_samples(self, folder) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def label_scores(self, samples: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        return {"judge_accuracy": float((classify(self.judge, samples)[0] == labels.cpu()).float().mean())}

    # -- shared ---------------------------------------------------------------------------------

    def reference(self, name: str, num: int, seed: int, cache_dir, folder=None) -> FeatureStatistics:
        """The reference statistics of extractor ``name``: of ``folder``'s samples, or of ``num``
        embedded real samples drawn with ``seed``; cached in ``cache_dir``."""
        extract, digest = self.extractors[name]
        source = (
            f"folder-{hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:8]}" if folder else "embedded"
        )
        path = Path(cache_dir) / f"{self.modality}_{name}_{digest}_{source}_{num}_seed{seed}.npz"
        if path.is_file():
            return FeatureStatistics.load(path)
        samples = self.read_samples(folder)[0] if folder else self.real_samples(num, seed)[0]
        stats = batched_statistics(extract, samples)
        stats.save(path, overwrite=True)
        return stats

    def score(self, samples: torch.Tensor, labels: torch.Tensor | None, references: dict) -> dict[str, float]:
        """Label scores (when labels are known) and a Frechet distance per extractor in ``references``."""
        return self.merge_scores([self.shard_scores(samples, labels, references)], references)

    # One process's share of a score, and the merge of the shares (mgm.parallel: one shard per rank).
    mergeable = True  # its label scores are per-sample means, so shards merge exactly

    def shard_scores(self, samples: torch.Tensor, labels: torch.Tensor | None, names) -> dict:
        """{count, label scores (per-sample means, None without labels), FeatureStatistics per extractor name}."""
        return {
            "count": len(samples),
            "labels": None if labels is None else self.label_scores(samples, labels),
            "stats": {name: batched_statistics(self.extractors[name][0], samples) for name in names},
        }

    def merge_scores(self, shards: list[dict], references: dict) -> dict[str, float]:
        """The scores of the union of ``shards``: label scores weighted by shard size, the features'
        statistics merged (``FeatureStatistics.merge``) before each Frechet distance."""
        shards = [shard for shard in shards if shard["count"]]
        total = sum(shard["count"] for shard in shards)
        scores = {}
        if shards[0]["labels"] is not None:
            for key in shards[0]["labels"]:
                scores[key] = sum(shard["labels"][key] * shard["count"] for shard in shards) / total
        for name, reference in references.items():
            merged = FeatureStatistics()
            for shard in shards:
                merged.merge(shard["stats"][name])
            scores[f"frechet_{name}"] = merged.distance(reference)
        return scores


class ImageEvaluation(Evaluation):
    """Shapes10 by default: the shipped judge (``mgm/pretrained/shapes_classifier``); FID-style
    distance on its features; ``inception=True`` adds torchmetrics' Inception features (FID)."""

    modality = "image"

    def __init__(self, judge_dir=None, image_size: int = 32, inception: bool = False):
        from mgm.data.shapes import CLASSES
        from mgm.eval.classifier import ImageClassifier

        super().__init__(ImageClassifier.from_pretrained(judge_dir or PRETRAINED / "shapes_classifier"))
        self.classes, self.image_size = CLASSES, image_size
        if inception:
            from mgm.eval.extractors import InceptionFID

            inception_net = InceptionFID().metric.inception
            self.add_extractor("inception", lambda x: inception_net((x * 255).byte()).double(), "fid-inception-v3")

    def real_samples(self, num: int, seed: int):
        from mgm.data.shapes import make_shapes

        labels = torch.arange(num) % len(self.classes)
        return make_shapes(num, self.image_size, seed=seed, labels=labels)[0], labels

    def read_samples(self, folder):
        from mgm.pipelines.image_io import read_image

        files, labels = _files_with_labels(folder, IMAGE_SUFFIXES, self.classes)
        images = [read_image(p) for p in files]
        if len({tuple(x.shape) for x in images}) > 1:
            raise ValueError(f"{folder}: images of different sizes; expected one size")
        return torch.stack(images), labels


class AudioEvaluation(Evaluation):
    """Tones8 by default: the shipped judge (``mgm/pretrained/tones_classifier``) and the exact pitch
    checker; FAD-style distance on the judge's features, with ``codec`` (an EncodecTokenizer) on its
    encoder's frame embeddings (fadtk's "encodec-emb"), and with ``vggish`` (a ``VGGishEmbedder``)
    on VGGish embeddings. Each embedder is given the clips at this evaluation's rate and resamples."""

    modality = "audio"

    def __init__(self, judge_dir=None, seconds: float = 2.0, codec=None, vggish=None):
        from mgm.data.tones import CLASSES
        from mgm.eval.audio_classifier import AudioClassifier

        super().__init__(AudioClassifier.from_pretrained(judge_dir or PRETRAINED / "tones_classifier"))
        self.classes, self.seconds, self.sample_rate = CLASSES, seconds, self.judge.sample_rate
        if codec is not None:
            from mgm.eval.extractors import EncodecEmbedder

            embedder = EncodecEmbedder(codec)
            self.add_extractor(
                "encodec", lambda x: embedder(x, self.sample_rate), weights_fingerprint(codec.model)[:10]
            )
        if vggish is not None:
            self.add_extractor("vggish", lambda x: vggish(x, self.sample_rate), vggish.fingerprint()[:10])

    def real_samples(self, num: int, seed: int):
        from mgm.data.tones import make_tones

        labels = torch.arange(num) % len(self.classes)
        return make_tones(num, self.seconds, self.sample_rate, seed=seed, labels=labels)[0], labels

    def read_samples(self, folder):
        from mgm.data.audio_io import read_audio

        files, labels = _files_with_labels(folder, AUDIO_SUFFIXES, self.classes)
        clips = [read_audio(p, self.sample_rate, channels=1)[0] for p in files]
        length = min(c.shape[-1] for c in clips)  # clips are cut to the shortest
        return torch.stack([c[..., :length] for c in clips]), labels

    def label_scores(self, samples: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        from mgm.data.tones import classify_tones

        scores = super().label_scores(samples, labels)
        checked = classify_tones(samples, self.sample_rate) == labels.cpu()
        scores["pitch_checker_agreement"] = float(checked.float().mean())
        return scores


@dataclass
class MotionSamples:
    """A batch of motion clips as the motion evaluation takes them.

    features: FloatTensor[M, T, 263], raw HumanML3D features, zero past each clip's length;
    lengths: LongTensor[M], frames per clip; captions: the M captions (None when unknown).
    """

    features: torch.Tensor
    lengths: torch.Tensor
    captions: list[str] | None = None

    def __post_init__(self):
        from mgm.data.motion_features import check_features

        check_features(self.features, "features")
        if self.features.dim() != 3:
            raise ValueError(f"features: got shape {tuple(self.features.shape)}; expected [M, T, 263]")
        self.lengths = torch.as_tensor(self.lengths)
        if self.lengths.shape != (len(self.features),):
            raise ValueError(f"lengths: got shape {tuple(self.lengths.shape)}; expected [{len(self.features)}]")
        if self.captions is not None and len(self.captions) != len(self.features):
            raise ValueError(f"captions: got {len(self.captions)} for {len(self.features)} motions; expected one each")

    def __len__(self) -> int:
        return len(self.features)

    def split(self, size: int) -> Iterator[MotionSamples]:
        """Consecutive chunks of at most ``size`` clips (what ``batched_statistics`` iterates)."""
        for start in range(0, len(self), size):
            rows = slice(start, start + size)
            yield MotionSamples(
                self.features[rows], self.lengths[rows], None if self.captions is None else self.captions[rows]
            )


class MotionEvaluation(Evaluation):
    """Motions7 by default: the shipped text-motion evaluator (``mgm/pretrained/motions7_evaluator``,
    or ``evaluator_dir``: any saved ``TextMotionEvaluator``) and the exact action checker.

    Scores of ``MotionSamples`` against the reference statistics of real clips' motion embeddings:
    ``fid``; ``diversity`` (mean distance of 300 random pairs of motion embeddings, fewer when there
    are fewer clips); with captions and a caption-reading evaluator, ``r_precision_top1/2/3`` (whole
    batches of 32, in the order given) and ``mm_dist``; with labels, ``action_agreement`` (the share
    of clips in which ``classify_motion`` finds the labelled action).
    """

    modality = "motion"

    def __init__(self, evaluator_dir=None, diversity_seed: int = 0):
        from mgm.data.motions import CLASSES
        from mgm.eval.text_motion import TextMotionEvaluator

        evaluator = TextMotionEvaluator.from_pretrained(evaluator_dir or PRETRAINED / "motions7_evaluator")
        super().__init__(evaluator)
        self.evaluator, self.classes, self.diversity_seed = evaluator, CLASSES, diversity_seed
        self.extractors = {"evaluator": (self._motion_embeddings, weights_fingerprint(evaluator)[:10])}

    def _motion_embeddings(self, samples: MotionSamples) -> torch.Tensor:
        return self.evaluator.embed_motion(samples.features, samples.lengths).double()

    def real_samples(self, num: int, seed: int) -> tuple[MotionSamples, torch.Tensor]:
        from mgm.data.motions import make_motions

        clips = make_motions(num, seed=seed)
        return MotionSamples(clips.features, clips.lengths, clips.captions), clips.labels

    def read_samples(self, folder) -> tuple[MotionSamples, torch.Tensor | None]:
        """``.npy`` features [F, 263] under ``folder`` (``*_joints.npy`` skipped; class sub-folders give
        labels); captions from ``folder/captions.json`` ({"<path relative to folder, without .npy>":
        caption}) when it is there."""
        from mgm.pipelines.motion_io import read_motion

        folder = Path(folder)
        files, labels = _files_with_labels(folder, MOTION_SUFFIXES, self.classes)
        clips = [read_motion(p) for p in files]
        lengths = torch.tensor([len(c) for c in clips])
        features = torch.zeros(len(clips), int(lengths.max()), clips[0].shape[-1])
        for i, clip in enumerate(clips):
            features[i, : len(clip)] = clip
        captions = None
        captions_file = folder / MOTION_CAPTIONS_FILE
        if captions_file.is_file():
            try:
                table = json.loads(captions_file.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"{captions_file}: not valid JSON ({e})") from e
            keys = [p.relative_to(folder).with_suffix("").as_posix() for p in files]
            missing = [key for key in keys if key not in table]
            if missing:
                raise ValueError(f"{captions_file}: no caption for {missing[:3]}; expected one per motion file")
            captions = [table[key] for key in keys]
        return MotionSamples(features, lengths, captions), labels

    def label_scores(self, samples: MotionSamples, labels: torch.Tensor) -> dict[str, float]:
        from mgm.data.motions import classify_motion

        found = classify_motion(samples.features, samples.lengths.clamp(min=2))
        return {"action_agreement": float((found == labels.cpu()).float().mean())}

    mergeable = False  # R-precision ranks batches of 32 and Diversity pairs samples: not per-sample means

    def score(self, samples: MotionSamples, labels: torch.Tensor | None, references: dict) -> dict[str, float]:
        from mgm.eval.motion_metrics import diversity, matching_score, r_precision

        scores = {} if labels is None else self.label_scores(samples, labels)
        with torch.no_grad():
            motion = torch.cat([self._motion_embeddings(chunk) for chunk in samples.split(256)])
            if "evaluator" in references:
                scores["fid"] = FeatureStatistics().update(motion).distance(references["evaluator"])
            if len(motion) >= 2:
                pairs = min(DIVERSITY_PAIRS, len(motion) - 1)
                generator = torch.Generator().manual_seed(self.diversity_seed)
                scores["diversity"] = diversity(motion, num_pairs=pairs, generator=generator)
            if samples.captions is not None and self.evaluator.text_input == "captions":
                text = torch.cat([self.evaluator.embed_text(chunk.captions).double() for chunk in samples.split(256)])
                if len(motion) >= R_PRECISION_BATCH:
                    top = r_precision(text, motion, top_k=3, batch_size=R_PRECISION_BATCH)
                    scores.update({f"r_precision_top{k}": value for k, value in enumerate(top, start=1)})
                scores["mm_dist"] = matching_score(text, motion)
        return scores


class VideoEvaluation(Evaluation):
    """MovingShapes by default: the shipped clip judge (``mgm/pretrained/moving_shapes_classifier``,
    a ``ClipClassifier`` with class and frame-order heads) and the exact checker
    (``mgm.data.moving_shapes.check_clips``). The Frechet distance on the judge's features is the
    FVD analogue (FVD takes an I3D action classifier's). Label scores: the judge's conditional
    accuracy, ``checker_agreement`` (clips the checker reads as valid MovingShapes clips of the
    labelled class) and its parts, ``checker_classes`` (one clean class in every frame) and
    ``checker_motion`` (every object on a bouncing constant-velocity path)."""

    modality = "video"

    def __init__(self, judge_dir=None, num_frames: int = 16, image_size: int = 32, tolerance: int = 1):
        from mgm.data.moving_shapes import CLASSES
        from mgm.eval.clip_classifier import ClipClassifier

        super().__init__(ClipClassifier.from_pretrained(judge_dir or PRETRAINED / "moving_shapes_classifier"))
        self.classes, self.num_frames, self.image_size, self.tolerance = CLASSES, num_frames, image_size, tolerance

    def real_samples(self, num: int, seed: int):
        from mgm.data.moving_shapes import make_clips

        labels = torch.arange(num) % len(self.classes)
        return make_clips(num, self.num_frames, self.image_size, seed=seed, labels=labels).clips, labels

    def read_samples(self, folder):
        from mgm.pipelines.video_io import read_video

        files, labels = _files_with_labels(folder, (".gif",), self.classes)
        clips = [read_video(p) for p in files]
        if len({tuple(c.shape) for c in clips}) > 1:
            raise ValueError(f"{folder}: clips of different shapes; expected one number of frames and size")
        return torch.stack(clips), labels

    def label_scores(self, samples: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        from mgm.data.moving_shapes import check_clips

        scores = super().label_scores(samples, labels)
        check = check_clips(samples, labels, tolerance=self.tolerance)
        scores["checker_agreement"] = float(check.valid.float().mean())
        scores["checker_classes"] = float(check.classes_ok.float().mean())
        scores["checker_motion"] = float(check.motion_ok.float().mean())
        return scores
