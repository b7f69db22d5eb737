"""analyze: read the fleet back from MLflow and Delta; summary, plots, report, ensemble selection, champion.

The same as ``mlfleet analyze``; kept for ``python entrypoints/analyze.py --help`` from a checkout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout need not be installed

from mlfleet.cli import entry_point  # noqa: E402

if __name__ == "__main__":
    entry_point("analyze")
