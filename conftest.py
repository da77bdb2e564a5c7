"""Repository-wide test set-up: tests never reach a model hub (a missed cache fails at once)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
