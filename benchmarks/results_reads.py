"""Reading the results table after many sweeps: with and without the compaction a sweep ends with.

A sweep writes one commit of one small file per model (each row idempotent through its own
transaction). This writes the rows of ``--sweeps`` default sweeps (90 models each), one
commit per row as the fleet's workers do, into two tables: one left as written, one
compacted after each sweep as `train_cpu` does (`DeltaResults.compact`: `optimize.compact()`
and a checkpoint). Then it times a whole read of each (what `analyze` does first), the median
of ``--repeats`` reads, and prints the files and log entries each read has to open.

    python benchmarks/results_reads.py                 # ten sweeps, 900 rows (about 2 minutes)
    python benchmarks/results_reads.py --sweeps 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlfleet.stores.rows import RESULTS, ResultRow  # noqa: E402
from mlfleet.stores.tables import open_results  # noqa: E402

MODELS_PER_SWEEP = 90


def a_row(sweep: int, model_id: int) -> ResultRow:
    at = datetime.now(timezone.utc)
    values = {name: None for name in ResultRow.__dataclass_fields__}
    text = {"sweep_id", "model_type", "family", "device", "feature_strategy", "task", "params_json", "primary_metric"}
    text |= {"status", "error", "mlflow_run_id", "model_uri", "experiment_id", "dataset", "dataset_digest", "node"}
    values.update({name: "" for name in text})
    values.update(
        sweep_id=f"train_cpu-{sweep:02d}",
        model_id=model_id,
        family="random_forest",
        status="FINISHED",
        score=0.9,
        n_features=20,
        n_trials=10,
        cpus=2.0,
        gpus=0.0,
        started_at=at,
        finished_at=at,
        entry_point="train_cpu",
    )
    return ResultRow(**values)


def timed_read(uri: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        frame = open_results(uri).read()
        times.append(time.perf_counter() - start)
    assert len(frame) > 0
    return statistics.median(times)


def shape(uri: str) -> str:
    from deltalake import DeltaTable

    log = Path(uri) / "_delta_log"
    checkpoints = len(list(log.glob("*.checkpoint.parquet")))
    commits = len(list(log.glob("*.json")))
    return f"{len(DeltaTable(uri).file_uris())} data files, {commits} commits, {checkpoints} checkpoint(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweeps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mlfleet-reads-"))
    plain, compacted = str(root / "as_written"), str(root / "compacted")
    tables = {uri: open_results(uri) for uri in (plain, compacted)}
    for table in tables.values():
        table.ensure()
    write_s = {plain: 0.0, compacted: 0.0}
    for sweep in range(args.sweeps):
        for uri, table in tables.items():
            start = time.perf_counter()
            for model_id in range(MODELS_PER_SWEEP):
                row = a_row(sweep, sweep * MODELS_PER_SWEEP + model_id)
                table.append([row], RESULTS.app_id(row))
            if uri == compacted:
                table.compact()
            write_s[uri] += time.perf_counter() - start
        print(f"sweep {sweep + 1}/{args.sweeps}: {(sweep + 1) * MODELS_PER_SWEEP} rows in each table", flush=True)

    n = args.sweeps * MODELS_PER_SWEEP
    print(f"\n{args.sweeps} sweeps of {MODELS_PER_SWEEP} models: {n} rows, one commit per row")
    for label, uri in (("as written", plain), ("compacted after each sweep", compacted)):
        print(
            f"{label:28s} read {timed_read(uri, args.repeats):6.3f} s (median of {args.repeats}); "
            f"writing {write_s[uri] / n * 1000:5.1f} ms per row; {shape(uri)}"
        )


if __name__ == "__main__":
    main()
