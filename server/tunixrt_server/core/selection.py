"""Dataset split values, shared by storage, the training worker and inference.

Selection and split themselves run inside the database: storage/dataset_selection.py.
"""

from __future__ import annotations

TRAIN, EVAL = 2, 3  # tunixrt.v1.DatasetSplit values
