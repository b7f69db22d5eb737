"""ensemble: shard the training data, one model per shard on Ray, a vote, compared with one model on all data.

The same as ``mlfleet ensemble``; kept for ``python entrypoints/ensemble.py --help`` from a checkout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout need not be installed

from mlfleet.cli import entry_point  # noqa: E402

if __name__ == "__main__":
    entry_point("ensemble")
