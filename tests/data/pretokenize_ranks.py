"""Run by tests/data/test_streaming.py under torchrun (2 CPU processes, gloo): every rank pre-tokenizes
its share into the codes cache and into webdataset shards, then streams its share of the shards.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/data/pretokenize_ranks.py \
        VQ_DIR MOTION_VQ_DIR OUT
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from mgm.data.motions import MotionsDataset
from mgm.data.pretokenize import pretokenize
from mgm.data.shapes import ShapesDataset
from mgm.data.streaming import StreamingCodes, pretokenize_to_shards
from mgm.parallel import Ranks
from mgm.tokenizers import ImageVQ
from mgm.tokenizers.motion_vq import MotionVQ
from mgm.training.motion_tokens import pretokenize_motions


def main(vq_dir: str, motion_vq_dir: str, out: str) -> None:
    dist.init_process_group("gloo")
    ranks = Ranks.current()
    tokenizer = ImageVQ.from_pretrained(vq_dir).eval()
    dataset = ShapesDataset(50, image_size=16, seed=0)
    codes, labels, _ = pretokenize(tokenizer, dataset, Path(out) / "codes.safetensors", "shapes-50", batch_size=8)
    pretokenize_to_shards(tokenizer, dataset, Path(out) / "shards", "shapes-50", batch_size=8, shard_size=6)
    motion_vq = MotionVQ.from_pretrained(motion_vq_dir).eval()
    clips = MotionsDataset(6, seed=1, mean=motion_vq.mean, std=motion_vq.std)
    pretokenize_motions(motion_vq, clips, Path(out) / "motion_codes.safetensors", "motions7(6, 1)")
    streamed = [item["codes"].flatten().tolist() for item in StreamingCodes(Path(out) / "shards", shuffle_buffer=4)]
    report = {"rank": ranks.rank, "world": ranks.world_size, "num_codes": len(codes), "streamed": streamed}
    (Path(out) / f"rank{ranks.rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main(*sys.argv[1:])
