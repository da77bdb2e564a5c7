"""Shared fixtures: an isolated FMB_HOME per test, and the tiny ``toy`` dataset plugin."""

import sys
from pathlib import Path

from fmb.testing.fixtures import fmb_home, toy  # noqa: F401

sys.path.insert(0, str(Path(__file__).parent))  # astropt_helpers (tests use --import-mode=importlib)
