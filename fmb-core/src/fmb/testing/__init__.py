"""Helpers for testing FMB and FMB plugins: a tiny canonical data set and plugin registration."""

from fmb.testing.plugins import registered_plugin
from fmb.testing.toy import ToyDataset, open_toy_dataset, toy_dataset_plugin

__all__ = ["ToyDataset", "open_toy_dataset", "registered_plugin", "toy_dataset_plugin"]
