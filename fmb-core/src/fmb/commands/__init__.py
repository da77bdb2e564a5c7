"""Implementations of the analysis commands: compare, probe, neighbors."""
