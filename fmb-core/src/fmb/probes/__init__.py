"""Physical-parameter probes and embedding look-ups (neighbours) on cached embeddings."""
