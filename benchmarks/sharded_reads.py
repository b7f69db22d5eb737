"""The sharded reader on a big Parquet table: what a driver and a member hold at their peak.

Writes 8,000,000 rows x 20 float64 columns (19 features and a target, about 1.2 GiB in pandas)
as 8 Parquet files of 4 row groups each into a temporary folder, then runs each step in a
fresh Python process and prints its peak resident memory (``VmHWM`` of ``/proc/self/status``),
its wall time, the bytes it read from the files and the rows it kept:

- ``imports``: the libraries alone (what every process pays);
- ``plan``: ``plan_parts`` alone (footers only);
- ``plan + val``: the plan and the validation rows (the ensemble's holdout task reads them);
- ``plan + shard``: a member's, the plan and one of 8 shards;
- ``read whole``: ``pd.read_parquet`` of the table, what the driver does today.

The folder is deleted at the end.

    python benchmarks/sharded_reads.py                    # 8,000,000 rows (about 3 min on 2 cores)
    python benchmarks/sharded_reads.py --rows 1000000     # a quick try
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLUMNS, FILES, GROUPS_PER_FILE, PARTITIONS = 20, 8, 4, 8

STEP = """
import json, sys, time
t = time.perf_counter()
import pandas as pd
from mlfleet.data import Reader, plan_parts, read_holdout, read_part
step, location = sys.argv[1], sys.argv[2]
reader, rows = Reader(), 0
if step != "imports" and step != "read whole":
    plan = plan_parts(location, target="y", partitions=PARTITIONS, seed=42, reader=reader)
if step == "plan + val":
    rows = len(read_holdout(plan, "val", reader=reader))
elif step == "plan + shard":
    rows = len(read_part(plan, 3, reader=reader))
elif step == "read whole":
    rows = len(pd.read_parquet(location))
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"hwm_kib": hwm, "wall_s": time.perf_counter() - t, "bytes": reader.bytes_read, "rows": rows}))
""".replace("PARTITIONS", str(PARTITIONS))


def write_table(folder: Path, rows: int) -> int:
    """``rows`` x :data:`COLUMNS` random floats in :data:`FILES` files; returns their bytes on disk."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    rng = np.random.default_rng(0)
    per_file = rows // FILES
    names = [f"f{i:02d}" for i in range(COLUMNS - 1)] + ["y"]
    for f in range(FILES):
        values = rng.normal(size=(COLUMNS, per_file))
        table = pa.table(dict(zip(names, values, strict=True)))
        pq.write_table(table, folder / f"part-{f}.parquet", row_group_size=-(-per_file // GROUPS_PER_FILE))
        del table, values
    return sum(p.stat().st_size for p in folder.iterdir())


def run_step(step: str, location: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", STEP, step, location], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{step} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mlfleet-sharded-", dir=args.dir)) / "table"
    try:
        disk = write_table(folder, args.rows)
        memory = args.rows * COLUMNS * 8
        print(
            f"{args.rows:,} rows x {COLUMNS} float64: {memory / 2**30:.2f} GiB in pandas, {disk / 2**30:.2f} GiB "
            f"on disk in {FILES} files of {GROUPS_PER_FILE} row groups; {PARTITIONS} shards, val 0.2, test 0.2"
        )
        for step in ("imports", "plan", "plan + val", "plan + shard", "read whole"):
            got = run_step(step, str(folder))
            print(
                f"{step:<13} peak RSS {got['hwm_kib'] / 2**20:6.2f} GiB  wall {got['wall_s']:6.1f} s  "
                f"read {got['bytes'] / 2**20:8.1f} MiB  rows kept {got['rows']:>10,}"
            )
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
