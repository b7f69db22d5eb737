"""benchmark: the same models trained one after another, as Ray tasks and with joblib.

The same as ``mlfleet benchmark``; kept for ``python entrypoints/benchmark.py --help`` from a checkout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout need not be installed

from mlfleet.cli import entry_point  # noqa: E402

if __name__ == "__main__":
    entry_point("benchmark")
