# Every target installs what it needs into .venv first (once; re-run when the deps change).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench bench-gpu pretrained-image pretrained-audio pretrained-ar pretrained-flex-ar pretrained-video pretrained-motion pretrained-critics clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch torchvision torchaudio
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# Samples from the shipped Shapes10 pipeline: 20 images (two per class) and a grid, in outputs/demo.
demo: $(STAMP)
	$(PY) generate.py image --num 20 --out outputs/demo --overwrite
	$(PY) generate.py audio --num 8 --seconds 2 --out outputs/demo/audio --overwrite

# Rebuild the shipped image pipeline and classifier with the repo's own recipes (CPU: about 165 min).
pretrained-image: $(STAMP)
	$(PY) train.py fit --config configs/image/vq_shapes.yaml
	# The AR model first: its weights warm-start the masked transformer.
	OMP_NUM_THREADS=1 $(PY) train.py fit --config configs/image/ar_shapes.yaml
	$(PY) train.py fit --config configs/image/transformer_shapes.yaml
	# 3000 more steps from the 6000-step checkpoint (the learning-rate schedule restarts for 9000)
	$(PY) train.py fit --config configs/image/transformer_shapes.yaml --trainer.max_steps 9000 \
		--ckpt_path "$$(ls -t outputs/image/transformer/lightning_logs/*/checkpoints/*step=6000.ckpt | head -1)"
	$(PY) train.py fit --config configs/image/classifier_shapes.yaml
	rm -rf mgm/pretrained/image_shapes mgm/pretrained/shapes_classifier mgm/pretrained/ar_image_shapes
	cp -r outputs/image/pipeline mgm/pretrained/image_shapes
	cp -r outputs/image/classifier/model mgm/pretrained/shapes_classifier
	cp -r outputs/image/ar/pipeline mgm/pretrained/ar_image_shapes

# The AR Shapes10 pipeline alone (same tokenizer: needs outputs/image/vq from pretrained-image).
pretrained-ar: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) train.py fit --config configs/image/ar_shapes.yaml
	rm -rf mgm/pretrained/ar_image_shapes
	cp -r outputs/image/ar/pipeline mgm/pretrained/ar_image_shapes

# The flexible-order AR Shapes10 pipeline (ARPG / LPD decoding), warm-started from the shipped AR model.
pretrained-flex-ar: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) train.py fit --config configs/image/flex_ar_shapes.yaml
	rm -rf mgm/pretrained/flex_ar_image_shapes
	cp -r outputs/image/flex_ar/pipeline mgm/pretrained/flex_ar_image_shapes

# The MovingShapes video pipeline (frame VQ, then the MaskViT-style transformer) and its clip judge
# (CPU, 2 threads: about 12 + 3 + 28 + 55 + 10 min).
pretrained-video: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) train.py fit --config configs/video/vq_moving_shapes.yaml
	OMP_NUM_THREADS=2 $(PY) train.py fit --config configs/video/transformer_moving_shapes.yaml
	# 2400 more steps from the 1200-step checkpoint (the learning-rate schedule restarts for 3600)
	OMP_NUM_THREADS=2 $(PY) train.py fit --config configs/video/transformer_moving_shapes.yaml --trainer.max_steps 3600 \
		--ckpt_path "$$(ls -t outputs/video/transformer/lightning_logs/*/checkpoints/*step=1200.ckpt | head -1)"
	OMP_NUM_THREADS=2 $(PY) train.py fit --config configs/video/classifier_moving_shapes.yaml
	rm -rf mgm/pretrained/video_moving_shapes mgm/pretrained/moving_shapes_classifier
	cp -r outputs/video/pipeline mgm/pretrained/video_moving_shapes
	cp -r outputs/video/classifier/model mgm/pretrained/moving_shapes_classifier

# The text-conditioned Motions7 pipeline: part-aware MotionVQ, then the masked motion transformer.
pretrained-motion: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) train.py fit --config configs/motion/vq_motions.yaml
	OMP_NUM_THREADS=1 $(PY) train.py fit --config configs/motion/transformer_motions.yaml
	OMP_NUM_THREADS=1 $(PY) train.py fit --config configs/motion/evaluator_motions.yaml
	rm -rf mgm/pretrained/motion_motions7 mgm/pretrained/motions7_evaluator
	cp -r outputs/motion/pipeline mgm/pretrained/motion_motions7
	cp -r outputs/motion/evaluator/model mgm/pretrained/motions7_evaluator

pretrained-audio: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) train.py fit --config configs/audio/codec_tones.yaml
	OMP_NUM_THREADS=1 $(PY) train.py fit --config configs/audio/transformer_tones.yaml
	OMP_NUM_THREADS=1 $(PY) train.py fit --config configs/audio/codec_tones_decoder.yaml
	rm -rf mgm/pretrained/audio_tones
	cp -r outputs/audio/pipeline mgm/pretrained/audio_tones
	# The decoder-only fine-tune keeps every code, so the transformer pairs with the tuned decoder.
	rm -rf mgm/pretrained/audio_tones/tokenizer
	cp -r outputs/audio/codec_decoder/tokenizer mgm/pretrained/audio_tones/tokenizer

# Token critics for the three shipped masked pipelines (`--method critic`; CPU: about 35 min).
# Each recipe writes its pipeline again with the critic in critic/, which replaces the shipped one.
pretrained-critics: $(STAMP)
	$(PY) train.py fit --config configs/image/critic_shapes.yaml
	$(PY) train.py fit --config configs/audio/critic_tones.yaml
	$(PY) train.py fit --config configs/motion/critic_motions.yaml
	rm -rf mgm/pretrained/image_shapes mgm/pretrained/audio_tones mgm/pretrained/motion_motions7
	cp -r outputs/image/pipeline_critic mgm/pretrained/image_shapes
	cp -r outputs/audio/pipeline_critic mgm/pretrained/audio_tones
	cp -r outputs/motion/pipeline_critic mgm/pretrained/motion_motions7

bench: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(PY) -m benchmarks.decode_speed --out benchmarks/results/decode_speed.json --markdown benchmarks/results/decode_speed.md
	for p in image audio motion; do $(PY) -m benchmarks.decode_speed --pipeline $$p --out benchmarks/results/decode_speed_$$p.json --markdown benchmarks/results/decode_speed_$$p.md; done
	$(PY) -m benchmarks.frontier
	$(PY) -m benchmarks.image_quality --num 512 --num-steps 12 24 --guidance-scale 0 3 --out benchmarks/results/image_quality.json
	$(PY) -m benchmarks.recap_speed --out benchmarks/results/recap_speed.json --markdown benchmarks/results/recap_speed.md
	$(PY) -m benchmarks.recap_speed --modality audio --num 256 --out benchmarks/results/recap_speed_audio.json --markdown benchmarks/results/recap_speed_audio.md
	$(PY) -m benchmarks.audio_quality --out benchmarks/results/audio_quality.json
	$(PY) -m benchmarks.sjd_speed --num 256 --repeats 9 --out benchmarks/results/sjd_speed.json --markdown benchmarks/results/sjd_speed.md
	$(PY) -m benchmarks.motion_quality --num 256 --out benchmarks/results/motion_quality.json

# The GPU tables of BENCHMARKS.md (needs a CUDA device and the bench extra).
bench-gpu: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[bench]'
	PYTHON=$(PY) OUT=benchmarks/results/gpu bash benchmarks/gpu.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check mgm tests

clean:
	rm -rf $(VENV) build *.egg-info
