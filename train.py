"""Train an mgm model: ``python train.py fit --config configs/<recipe>.yaml`` (see mgm/cli/train.py)."""

from mgm.cli.train import main

if __name__ == "__main__":
    main()
