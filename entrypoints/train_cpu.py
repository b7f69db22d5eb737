"""train_cpu: the CPU fleet (scikit-learn and XGBoost), tuned with Optuna, on Ray.

The same as ``mlfleet train-cpu``; kept for ``python entrypoints/train_cpu.py --help`` from a checkout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout need not be installed

from mlfleet.cli import entry_point  # noqa: E402

if __name__ == "__main__":
    entry_point("train_cpu")
