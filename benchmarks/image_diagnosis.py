"""Why the shipped masked Shapes10 model scores low: its conditionals against the AR model's, and
how stable the tokenizer's codes are.

    .venv/bin/python -m benchmarks.image_diagnosis [--num 512] [--exact 16] [--out FILE]

On real held-out codes (the last --num of the pre-tokenized Shapes10 cache is not used here: codes
come from fresh Shapes10 images, seed 2, through the shipped tokenizer):
- masked model: mean NLL of the masked tokens at several mask counts, with the true label, a wrong
  label and the null label (how much it uses the class);
- AR model: next-token NLL with the true, wrong and null label;
- one-missing NLL: the masked model's p(x_i | all other tokens) against the same posterior implied
  exactly by the AR model (p(x_i = v | rest) is proportional to the AR joint with x_i = v), on
  --exact images (64 x 64 AR evaluations per image);
- tokenizer: the share of codes that change when 1/255 or 4/255 Gaussian pixel noise is added, and
  when a decoded image is encoded again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # run as a file (python benchmarks/image_diagnosis.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from benchmarks.timing import write_report
from mgm.data.shapes import make_shapes
from mgm.models import Condition
from mgm.pipelines import ARImagePipeline, ImagePipeline


def masked_nll(model, codes, count: int, cond: Condition, generator) -> float:
    """Mean NLL of ``count`` random masked positions per image (codes [M, 1, N])."""
    m, _, n = codes.shape
    mask = (torch.rand(m, n, generator=generator).argsort(-1).argsort(-1) < count)[:, None]
    inputs = torch.where(mask, model.spec.mask_tensor(), codes)
    logits = model(inputs, cond)[mask]
    return F.cross_entropy(logits[:, : model.spec.codebook_sizes[0]], codes[mask]).item()


def ar_posterior_nll(ar, tokens: torch.Tensor, label: int, vocab: int) -> torch.Tensor:
    """-log p(x_i | x_rest) for each position i of one image, from the AR joint: [N]."""
    n = tokens.shape[0]
    candidates = tokens.repeat(n * vocab, 1).view(n, vocab, n)
    candidates[torch.arange(n), :, torch.arange(n)] = torch.arange(vocab)
    candidates = candidates.view(-1, n)
    joint = []
    for chunk in candidates.split(1024):
        logp = ar(chunk, Condition(labels=torch.full((chunk.shape[0],), label)))[:, :-1].log_softmax(-1)
        joint.append(logp.gather(-1, chunk[..., None])[..., 0].sum(-1))
    posterior = torch.cat(joint).view(n, vocab).log_softmax(-1)
    return -posterior[torch.arange(n), tokens]


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num", type=int, default=512)
    parser.add_argument("--exact", type=int, default=16, help="images for the exact AR one-missing posterior")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    masked, ar_pipe = ImagePipeline.default(), ARImagePipeline.default()
    model, ar, tokenizer = masked.transformer.eval(), ar_pipe.transformer.eval(), masked.tokenizer
    images, labels = make_shapes(args.num, masked.image_size, seed=2)
    codes = tokenizer.encode(images)  # (M, 1, N)
    vocab, n = model.spec.codebook_sizes[0], model.spec.num_positions
    conds = {
        "true": Condition(labels=labels),
        "wrong": Condition(labels=(labels + 3) % 10),
        "null": Condition(labels=labels).null(),
    }
    report = {"num": args.num, "masked_nll": {}, "ar_next_token_nll": {}}
    for count in (n, n // 2, 1):  # the same masks for every condition
        report["masked_nll"][f"{count}_of_{n}_masked"] = {
            name: masked_nll(model, codes, count, cond, torch.Generator().manual_seed(count))
            for name, cond in conds.items()
        }
    flat = codes[:, 0]
    for name, cond in conds.items():
        logits = ar(flat, cond)[:, :-1]
        report["ar_next_token_nll"][name] = F.cross_entropy(logits.reshape(-1, vocab), flat.reshape(-1)).item()
    ar_one, masked_one = [], []
    for i in range(args.exact):
        ar_one.append(ar_posterior_nll(ar, flat[i], int(labels[i]), vocab).mean())
        inputs = flat[i].repeat(n, 1)
        inputs[torch.arange(n), torch.arange(n)] = model.spec.mask_ids[0]
        logp = model(inputs[:, None], Condition(labels=labels[i].repeat(n)))[:, 0].log_softmax(-1)
        masked_one.append(-logp[torch.arange(n), torch.arange(n), flat[i]].mean())
    report["one_missing_nll"] = {
        "images": args.exact,
        "masked_model": torch.stack(masked_one).mean().item(),
        "implied_by_ar_model": torch.stack(ar_one).mean().item(),
    }
    noise = torch.Generator().manual_seed(1)
    report["tokenizer_codes_changed"] = {
        f"pixel_noise_{k}_of_255": (
            codes != tokenizer.encode((images + k / 255 * torch.randn(images.shape, generator=noise)).clamp(0, 1))
        )
        .float()
        .mean()
        .item()
        for k in (1, 4)
    }
    again = tokenizer.encode(tokenizer.decode(codes).clamp(0, 1))
    report["tokenizer_codes_changed"]["decode_then_encode"] = (codes != again).float().mean().item()
    write_report(report, args.out)
    return report


if __name__ == "__main__":
    main()
