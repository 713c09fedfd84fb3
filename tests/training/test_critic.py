"""TokenCriticTraining: only the critic learns, it learns the sampled / given call, and fit ends
with the pipeline saved again with its critic."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from mgm.training.critic import TokenCriticTraining
from tests.conftest import quiet_trainer


class PatternCodes(Dataset):
    """Every example is the same 8x8 code pattern (code = position mod 4) with a random label:
    a token the (random, near-uniform) transformer samples is almost never the pattern's."""

    def __len__(self):
        return 256

    def __getitem__(self, i):
        return {"codes": (torch.arange(64) % 4)[None], "labels": torch.tensor(i % 3)}


def test_the_critic_learns_and_fit_saves_the_pipeline_with_it(tiny_image_pipeline, tmp_path):
    tiny_image_pipeline.save_pretrained(tmp_path / "pipe")
    frozen = {k: v.clone() for k, v in tiny_image_pipeline.transformer.state_dict().items()}
    torch.manual_seed(0)
    system = TokenCriticTraining(str(tmp_path / "pipe"), "mgm.pipelines.ImagePipeline", str(tmp_path / "out"),
                                 num_heads=2, lr=3e-3, warmup_steps=5)  # fmt: skip
    data = DataLoader(PatternCodes(), batch_size=32, shuffle=True)
    torch.manual_seed(0)
    before, _ = system.critic_loss(next(iter(data)))
    quiet_trainer(max_steps=60).fit(system, data)
    system.eval()
    torch.manual_seed(1)
    losses, accuracies = zip(*(system.critic_loss(batch) for batch in data))
    loss, accuracy = float(torch.stack(losses).mean()), float(torch.stack(accuracies).mean())
    # A critic that cannot see the tokens does no better than the share masked, about 0.6 under
    # the cosine schedule (the binary entropy of that share is about 0.67 nats).
    assert float(before) > 0.5 and accuracy > 0.9 and loss < 0.3, (float(before), loss, accuracy)
    for name, value in system.transformer.state_dict().items():
        assert torch.equal(value, frozen[name]), f"the frozen transformer changed: {name}"
    from mgm.pipelines import ImagePipeline

    saved = ImagePipeline.from_pretrained(tmp_path / "out")
    for name, value in system.critic.state_dict().items():
        assert torch.equal(saved.critic.state_dict()[name], value), name
