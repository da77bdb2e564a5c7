"""Shared fixtures: an isolated FMB_HOME per test, and the tiny ``toy`` dataset plugin."""

from fmb.testing.fixtures import fmb_home, toy  # noqa: F401
