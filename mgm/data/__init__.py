"""Datasets: pre-computed code files and synthetic / embedded data."""

from mgm.data.codes import CodesDataset, load_codes, save_codes
from mgm.data.synthetic import SparseMarkovChain

__all__ = ["CodesDataset", "SparseMarkovChain", "load_codes", "save_codes"]
