"""Cross-system comparison of run folders: rank agreement, top-set overlap, retention."""
