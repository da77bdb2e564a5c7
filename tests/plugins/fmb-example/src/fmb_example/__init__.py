"""fmb-example: an example third-party FMB plugin (a random-projection model and a Mahalanobis detector)."""
