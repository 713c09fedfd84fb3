"""The decode options of ``mgm-generate`` and ``mgm-eval``, built from the method registry.

Every option of every registered method becomes one flag (``num_steps`` -> ``--num-steps``),
its help naming the methods that take it; ``--method`` offers the registered names. Unset flags
stay None, so a pipeline keeps its saved defaults; a flag the chosen method does not take is
refused by the pipeline's settings with the list of the accepted ones.

Also ``cli_main``: the one error convention of the CLIs (``error: <message>`` on one line,
exit status 2, the traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import fields

from mgm.decoding import METHODS, RunOptions, SamplingOptions
from mgm.decoding.registry import KINDS
from mgm.decoding.speed import DTYPES

# Options a CLI sets itself (--device), or that are not command-line values.
NOT_FLAGS = ("device", "callback")
# What each shared option does, for --help (methods' own options take their class's doc).
HELP = {
    "temperature": "token sampling temperature (0 = greedy)",
    "top_k": "sample among the k most likely tokens",
    "top_p": "sample from the smallest nucleus of this probability",
    "guidance_scale": "classifier-free guidance scale (0 = none)",
    "guidance_annealing": "guidance ramp over the steps: constant, linear, cosine",
    "choice_temperature": "masked decoding: temperature of the confidence noise",
    "choice_temperature_annealing": "how that noise decays: constant, linear, cosine",
    "dtype": "masked decoding: autocast dtype",
    "compile": "masked decoding: torch.compile the transformer",
}


def _flag_kwargs(annotation: str) -> dict:
    """argparse keywords for a dataclass field annotated ``annotation`` (a string here)."""
    if annotation.startswith("bool"):
        return {"action": "store_const", "const": True}
    if "tuple" in annotation or "list" in annotation:
        return {"type": int, "nargs": "+"}
    if annotation.startswith("int"):
        return {"type": int}
    if annotation.startswith("float"):
        return {"type": float}
    return {"type": str}


def _option_fields() -> dict[str, tuple[str, list[str]]]:
    """Every option name -> (its annotation, the methods that take it), in a stable order."""
    table: dict[str, tuple[str, list[str]]] = {}
    shared = {f.name: f.type for cls in (SamplingOptions, RunOptions) for f in fields(cls)}
    for name, method in METHODS.items():
        own = {f.name: f.type for f in fields(method.options)}
        for option in method.option_names:
            if option in NOT_FLAGS:
                continue
            annotation = own.get(option, shared.get(option, "str"))
            table.setdefault(option, (str(annotation), []))[1].append(name)
    return table


def add_decode_options(parser: argparse.ArgumentParser, kinds: tuple[str, ...] = KINDS) -> None:
    """``--method`` and one flag per decode option of the registered methods of ``kinds``."""
    names = [name for name, m in METHODS.items() if m.kind in kinds]
    described = "; ".join(f"{n}: {METHODS[n].summary}" for n in names)
    parser.add_argument("--method", choices=names, help=f"decoding method (default: the model's). {described}")
    group = parser.add_argument_group("decode options (unset: the pipeline's saved defaults)")
    for option, (annotation, methods) in _option_fields().items():
        if not any(METHODS[m].kind in kinds for m in methods):
            continue
        kwargs = _flag_kwargs(annotation)
        if option == "dtype":
            kwargs = {"choices": sorted(DTYPES)}
        takers = [m for m in methods if METHODS[m].kind in kinds]
        every = len(takers) == len(names)
        own_help = {k: v for m in takers for k, v in getattr(METHODS[m].options, "HELP", {}).items()}
        what = HELP.get(option) or own_help.get(option, option.replace("_", " "))
        group.add_argument(f"--{option.replace('_', '-')}", help=what + ("" if every else f" ({', '.join(takers)})"),
                           **kwargs)  # fmt: skip


def decode_options(args: argparse.Namespace) -> dict:
    """The decode options given on the command line (``--method`` included), None ones dropped."""
    names = ["method", *_option_fields()]
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def positive_int(text: str) -> int:
    """argparse type of counts: an integer >= 1 (argparse reports anything else, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected an integer >= 1")
    return value


class CLIParser(argparse.ArgumentParser):
    """argparse with the CLIs' error convention: a bad flag is one ``error: ...`` line and exit
    status 2 (the usage is what ``--help`` is for). Sub-commands' parsers are of this class too."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def cli_main(run: Callable[[argparse.Namespace], object], parser: argparse.ArgumentParser, argv=None):
    """Parse ``argv`` and ``run`` it; a user error prints ``error: ...`` on one line and exits 2
    (``--debug``, where the parser has it, re-raises it with the traceback)."""
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError) as e:
        if getattr(args, "debug", False):
            raise
        message = " ".join(str(e).split())
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
