"""The shipped AR Shapes10 pipeline: it loads, its samples carry their class, and SJD takes fewer
forward passes than AR on every sample. The threshold sits below the figure measured with
benchmarks/sjd_speed.py on 256 samples (README)."""

import torch

from mgm.eval import ImageClassifier, image_quality
from mgm.pipelines import ARImagePipeline
from mgm.pipelines.ar_image import DEFAULT_AR_PIPELINE


def test_shipped_ar_pipeline_samples_its_classes_in_fewer_passes_with_sjd():
    total = sum(p.stat().st_size for p in DEFAULT_AR_PIPELINE.rglob("*") if p.is_file())
    assert total < 20 * 2**20
    pipe = ARImagePipeline.default()
    judge = ImageClassifier.from_pretrained(DEFAULT_AR_PIPELINE.parent / "shapes_classifier")
    labels = torch.arange(40) % 10
    result = pipe.generate_codes(40, labels=labels, seed=0)  # the default: SJD, window 16
    assert pipe.settings.method == "sjd" and int(result.passes_per_sample().max()) < 64
    quality = image_quality(judge, pipe.tokenizer.decode(result.codes), labels)
    assert quality["accuracy"] >= 0.7, quality  # chance is 0.10; measured about 0.9 on 256
