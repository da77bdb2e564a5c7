"""FMB plugin for aion."""
