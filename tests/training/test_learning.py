"""The engine learns: train on sparse Markov chains, decode, and check the chain's rules hold."""

import lightning as L
import torch

from mgm.decoding import maskgit_decode
from mgm.models import Condition, MaskedTransformer
from mgm.training import MarkovCodesDataModule, MaskedTokenTraining
from tests.conftest import quiet_trainer


def test_masked_model_learns_class_conditional_markov_chains():
    # Two classes, each its own chain over 16 states with 2 allowed successors per state, so a
    # random sequence has 2/16 = 12.5% allowed transitions. Measured after this 1500-step CPU run
    # (about 25 s on 2 cores): ~0.89 of transitions follow the sample's own class chain and ~0.11
    # follow the other class's (chance), decoding in 8 MaskGIT steps.
    L.seed_everything(0, verbose=False)
    data = MarkovCodesDataModule(
        vocab_size=16, length=16, branching=2, num_classes=2, num_sequences=4096, batch_size=64
    )
    model = MaskedTransformer([16], [16], dim=64, depth=2, num_heads=4, num_classes=2)
    system = MaskedTokenTraining(model, lr=3e-3, warmup_steps=20, weight_decay=0.0)
    trainer = quiet_trainer(1500, limit_val_batches=0)
    trainer.fit(system, data)

    model.eval()
    labels = torch.arange(2).repeat(64)
    result = maskgit_decode(
        model,
        model.spec,
        batch_size=128,
        num_steps=8,
        cond=Condition(labels=labels),
        generator=torch.Generator().manual_seed(0),
    )
    sequences = result.codes[:, 0]
    own = data.chain.valid_rate(sequences, labels).mean().item()
    other = data.chain.valid_rate(sequences, 1 - labels).mean().item()
    assert own > 0.8, f"only {own:.3f} of transitions follow the class chain (chance is 0.125)"
    assert other < 0.25, f"{other:.3f} follow the other class's chain: the label is not used"
