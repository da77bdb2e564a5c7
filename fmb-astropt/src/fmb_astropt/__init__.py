"""FMB plugin for astropt."""
