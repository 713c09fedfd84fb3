"""``mgm-train`` / ``python train.py``: LightningCLI over the mgm training systems.

python train.py fit --config configs/markov_toy.yaml
python train.py fit --config configs/markov_toy.yaml --trainer.max_steps 100
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.cli import LightningCLI


def main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    return LightningCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


if __name__ == "__main__":
    main()
