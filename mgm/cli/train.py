"""``mgm-train`` / ``python train.py``: LightningCLI over the mgm training systems.

python train.py fit --config configs/markov_toy.yaml
python train.py fit --config configs/markov_toy.yaml --trainer.max_steps 100
python train.py fit --config configs/markov_toy.yaml --ckpt_path outputs/markov_toy/.../step=100.ckpt

A user error (a bad value in a recipe or on the command line, a ``--ckpt_path`` that is not a
checkpoint) is printed as one ``error: ...`` line with exit status 2, as the other CLIs do;
``--debug`` shows the traceback. A refused run leaves nothing behind: the log folder it made
(with Lightning's config.yaml) is removed. Checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

import pickle
import re
import shutil
import sys
from argparse import ArgumentError
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningCLI

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, MisconfigurationException)


def check_checkpoint(path: str | Path) -> None:
    """Refuse a ``--ckpt_path`` that is missing, a folder, or not a Lightning checkpoint that
    loads without unpickling arbitrary objects (``torch.load(weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"ckpt_path={str(path)!r}: {what} (expected a Lightning .ckpt file)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        # torch's weights-only refusal: the line after "WeightsUnpickler error:" says what it met
        said = [b for a, b in zip(lines, lines[1:]) if a.endswith("WeightsUnpickler error:")]
        reason = (said or lines or [type(e).__name__])[0][:200]
        raise ValueError(f"ckpt_path={str(path)!r}: not a readable Lightning checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"ckpt_path={str(path)!r}: not a Lightning checkpoint (no 'state_dict' in it)")


def _first_missing(path: Path) -> Path | None:
    """The outermost folder on the way to ``path`` that does not exist yet (None if it exists)."""
    missing = None
    for folder in [path, *path.parents]:
        if folder.exists():
            return missing
        missing = folder
    return missing


class MGMCLI(LightningCLI):
    """LightningCLI that checks ``--ckpt_path`` before Lightning starts, loads it with
    ``weights_only=True``, and removes the log folder of a run it refuses."""

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads the checkpoint's hyperparameters here, before anything else runs.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path not in (None, "last", "best", "hpc", "registry"):
            check_checkpoint(ckpt_path)
        super()._parse_ckpt_path()

    def _run_subcommand(self, subcommand: str) -> None:
        kwargs = self._prepare_subcommand_kwargs(subcommand)
        if "weights_only" in self._subcommand_method_arguments[subcommand]:
            kwargs["weights_only"] = True
        log_dir = self.trainer.log_dir
        created = _first_missing(Path(log_dir)) if log_dir else None
        try:
            getattr(self.trainer, subcommand)(**kwargs)
        except USER_ERRORS:
            if created is not None and created.exists():
                shutil.rmtree(created, ignore_errors=True)
            raise


def main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    args = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        return MGMCLI(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"exit_on_error": False},  # parse errors are raised, and printed on one line below
            args=args,
            run=run,
        )
    except (*USER_ERRORS, ArgumentError) as e:
        if debug:
            raise
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        raise SystemExit(2) from None


def one_line(message: str) -> str:
    """The message on one line; of jsonargparse's "does not validate against any of the Union
    subtypes" (a recipe's class got a bad value), the class's own errors, without the dump."""
    if "Union subtypes" in message and "Errors:" in message:
        errors = message.split("Errors:", 1)[1].split("Given value type:", 1)[0]
        reasons = [" ".join(item.split()) for item in re.split(r"\n\s*- ", "\n" + errors) if item.strip()]
        reasons = [r for r in reasons if "NoneType" not in r]
        if reasons:
            message = "; ".join(reasons)
    return " ".join(message.split())


if __name__ == "__main__":
    main()
