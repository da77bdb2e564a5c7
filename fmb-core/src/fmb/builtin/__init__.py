"""Built-in features, registered as default plugins through the same hooks as third parties."""
