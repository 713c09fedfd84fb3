"""``mgm-train`` / ``python train.py``: LightningCLI over the mgm training systems.

python train.py fit --config configs/markov_toy.yaml
python train.py fit --config configs/markov_toy.yaml --trainer.max_steps 100

A user error (a bad value in a recipe or on the command line) is printed as one ``error: ...``
line with exit status 2, as the other CLIs do; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningCLI

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, MisconfigurationException)


def main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    args = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        return LightningCLI(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            args=args,
            run=run,
        )
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
