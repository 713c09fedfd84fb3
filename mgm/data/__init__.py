"""Datasets: pre-computed code files and synthetic / embedded data."""

from mgm.data.codes import CodesDataset, load_codes, save_codes
from mgm.data.humanml3d import HumanML3D, collate_motions
from mgm.data.synthetic import SparseMarkovChain

__all__ = ["CodesDataset", "HumanML3D", "SparseMarkovChain", "collate_motions", "load_codes", "save_codes"]
