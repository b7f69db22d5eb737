"""train_gpu: the PyTorch MLP fleet, one GPU (or a fraction) per model, CPU fallback.

The same as ``mlfleet train-gpu``; kept for ``python entrypoints/train_gpu.py --help`` from a checkout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout need not be installed

from mlfleet.cli import entry_point  # noqa: E402

if __name__ == "__main__":
    entry_point("train_gpu")
