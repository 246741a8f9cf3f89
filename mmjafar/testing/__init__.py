"""Synthetic data builders for tests and demos (importable by projects)."""
from .ade20k import ADE20K_SPLITS, make_ade20k

__all__ = ['ADE20K_SPLITS', 'make_ade20k']
