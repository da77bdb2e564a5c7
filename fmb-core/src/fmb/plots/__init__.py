"""Figures (matplotlib, Agg backend, deterministic)."""
