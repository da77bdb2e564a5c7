"""FMB plugin for astroclip."""
