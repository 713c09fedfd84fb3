"""Generate with an mgm model: ``python generate.py <modality> --model DIR`` (see mgm/cli/generate.py)."""

from mgm.cli.generate import main

if __name__ == "__main__":
    main()
