"""The default ``synthetic`` dataset: a seeded Euclid (VIS/Y/J/H) + DESI-like survey with labelled anomalies.

Modules: ``survey`` (instrument constants), ``templates`` (kcorrect templates), ``sed`` (continua, lines,
photometry), ``population`` (galaxies, selection, morphology), ``images`` (rendering), ``anomalies``
(the eight classes), ``generate`` (one chunk -> RecordBatch), ``options`` and ``dataset`` (caching).
"""

from fmb.datasets.synthetic.anomalies import ANOMALY_CLASSES
from fmb.datasets.synthetic.dataset import SyntheticDataset, open_dataset

__all__ = ["ANOMALY_CLASSES", "SyntheticDataset", "open_dataset"]
