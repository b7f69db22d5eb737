"""The fleet on every real table this project reaches offline, and the column roles against plain one-hot.

Part 1: for each table, one `mlflow run . -e train_cpu` in a fresh folder with every CPU family
(one model each, 5 trials), then read back. Prints columns in and features out (of the column
plan), wall time, CPU utilisation, the best validation and test score per family, and the
spread between the best and worst family (on validation).

Part 2: the messy table (ids, names, dates, rare levels, yes/no text, missing values, a 10:1
class imbalance) with today's column roles and with the encoding mlfleet had before them
(every text column one-hot encoded in full, densely), in the same process, one family after
the other with the same 5 trials: features out, seconds of model work, and each family's
balanced accuracy on the test rows against the majority-class baseline (0.5).

    python benchmarks/real_tables.py                      # every table, then the comparison
    python benchmarks/real_tables.py --tables messy,wine  # some of them
    python benchmarks/real_tables.py --skip-fleet         # part 2 only
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import _harness

FAMILIES = ("logistic", "random_forest", "xgboost", "gradient_boosting", "naive_bayes", "svm")
SHARED = _harness.REPO.parent / "shared" / "datasets"
#: name -> (data, target); the files under ../shared/datasets are used when they are there
TABLES = {
    "breast_cancer": ("breast_cancer", ""),
    "wine": ("wine", ""),
    "iris": ("iris", ""),
    "diabetes": ("diabetes", ""),
    "california_housing": (str(SHARED / "california-housing.csv"), "median_house_value"),
    "winequality_red": (str(SHARED / "winequality-red.csv"), "quality"),
    "winequality_white": (str(SHARED / "winequality-white.csv"), "quality"),
    "messy": ("messy", ""),
}


def fleet(name: str, data: str, target: str, trials: int) -> None:
    work = _harness.workspace()
    models = ",".join(f"{f}:1" for f in FAMILIES)
    params = [f"data={data}", f"models={models}", f"n_trials={trials}"] + ([f"target={target}"] if target else [])
    done = _harness.run(work, "train_cpu", params)
    parents, _, rows = _harness.sweeps(work)
    parent = parents[-1]
    features = _features_out(parent.data.params)
    ok = rows[rows["status"] == "FINISHED"]
    metric = parent.data.tags.get("primary_metric", "")
    from mlfleet.metrics import METRICS

    best_first = not METRICS[metric].greater_is_better if metric in METRICS else False
    per_family = ok.sort_values("val_score", ascending=best_first).drop_duplicates("family")
    cpu = parent.data.metrics.get("cpu_utilisation", float("nan"))
    print(
        f"\n{name}: {features} | wall {done.wall_s:.1f} s | CPU utilisation {cpu:.0%} | "
        f"{len(ok)}/{len(rows)} models | metric {metric}"
    )
    for r in per_family.itertuples():
        print(f"  {r.family:<18} val {r.val_score:8.4f}   test {r.score:8.4f}")
    spread = per_family["val_score"].max() - per_family["val_score"].min()
    print(f"  spread best - worst family (validation): {spread:.4f}")


def _features_out(params: dict[str, str]) -> str:
    """Columns in and features out of the column plan, on the sweep's own training rows."""
    from mlfleet.commands.analyze.readback import SweepInfo, unquote
    from mlfleet.commands.analyze.steps import reproduce_split
    from mlfleet.data import build_preprocessor

    params = {k: unquote(v) for k, v in params.items()}  # `mlflow run` logs an empty value as ''
    split = reproduce_split(SweepInfo(sweep_id="", entry_point="train_cpu", started=0.0, params=params), "")
    prep = build_preprocessor(split.plan).fit(split.X_train, split.y_train)
    return f"{len(split.plan.roles)} columns in, {len(prep.get_feature_names_out())} features out"


def one_hot_everything(X):
    """mlfleet's encoding before column roles: impute and scale numbers, one-hot every other column, dense."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    return ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ],
        sparse_threshold=0.0,
    )


def compare_encodings(trials: int, rows: int) -> None:
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score

    import mlfleet.data._split as _split_module
    import mlfleet.training.tuning as tuning
    from mlfleet import logs
    from mlfleet.config import DataConfig
    from mlfleet.data import ColumnPlan, build_preprocessor, load_dataset, split_dataset
    from mlfleet.metrics import resolve_metric
    from mlfleet.training.jobs import ModelJob

    logs.ignore_known_noise()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"sklearn\.svm")  # SVC(probability=True)
    dataset = load_dataset(DataConfig(source="messy", n_samples=rows))
    planned = split_dataset(dataset, seed=42)
    # before column roles every column of the file reached the model: the same rows, all columns
    keep_all = _split_module.plan_columns
    _split_module.plan_columns = lambda X, **kw: ColumnPlan(dict.fromkeys(X.columns, "numeric"))
    try:
        everything = split_dataset(dataset, seed=42)
    finally:
        _split_module.plan_columns = keep_all
    metric = resolve_metric("f1", "classification")
    print(
        f"\nmessy table, {rows} rows, {dataset.X.shape[1]} columns, classes "
        + ", ".join(f"{k} {v:.0%}" for k, v in planned.plan.class_shares.items())
        + f"; {len(FAMILIES)} families x {trials} trials, one after the other on one core"
    )
    results = {}
    for label, split, encoder in (
        ("column roles", planned, None),
        ("one-hot everything", everything, one_hot_everything),
    ):
        original = tuning.build_preprocessor
        if encoder is not None:
            tuning.build_preprocessor = lambda plan, sparse=False, seed=0, _e=encoder, _s=split: _e(_s.X_train)
        try:
            prep = encoder(split.X_train) if encoder else build_preprocessor(split.plan)
            width = prep.fit(split.X_train, split.y_train).transform(split.X_val[:5]).shape[1]
            scores, seconds = {}, {}
            for i, name in enumerate(FAMILIES):
                t0 = time.perf_counter()
                tuned = tuning.tune_and_fit(ModelJob(i, name, "all", 1, 0.0, 42 + i, 1.0), split, metric, trials)
                seconds[name] = time.perf_counter() - t0
                pred = tuned.pipeline.predict(split.X_test)
                scores[name] = balanced_accuracy_score(split.y_test, pred)
        finally:
            tuning.build_preprocessor = original
        results[label] = (width, seconds, scores)
    print(f"  {'family':<18} {'roles: s':>9} {'bal.acc':>8} | {'one-hot: s':>10} {'bal.acc':>8}")
    for name in FAMILIES:
        a, b = results["column roles"], results["one-hot everything"]
        print(f"  {name:<18} {a[1][name]:9.1f} {a[2][name]:8.3f} | {b[1][name]:10.1f} {b[2][name]:8.3f}")
    (wa, sa, ba), (wb, sb, bb) = results["column roles"], results["one-hot everything"]
    total_a, total_b = sum(sa.values()), sum(sb.values())
    print(f"  features out: column roles {wa}, one-hot everything {wb}")
    print(
        f"  model work: column roles {total_a:.1f} s, one-hot everything {total_b:.1f} s: "
        f"{total_b / total_a:.1f}x faster with column roles"
    )
    worst = min(ba, key=ba.get)
    print(
        f"  worst family on balanced accuracy with column roles: {worst} {ba[worst]:.3f} "
        f"(majority-class baseline 0.500; {'above' if ba[worst] > 0.5 else 'NOT above'} it)"
    )
    mean_a, mean_b = np.mean(list(ba.values())), np.mean(list(bb.values()))
    print(f"  mean balanced accuracy: column roles {mean_a:.3f}, one-hot everything {mean_b:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated, from: " + ", ".join(TABLES))
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--messy-rows", type=int, default=3000)
    parser.add_argument("--skip-fleet", action="store_true", help="only the encoding comparison")
    args = parser.parse_args()
    if not args.skip_fleet:
        for name in args.tables.split(","):
            data, target = TABLES[name]
            if "/" in data and not Path(data).exists():
                print(f"\n{name}: skipped, {data} is not here")
                continue
            fleet(name, data, target, args.trials)
    compare_encodings(args.trials, args.messy_rows)


if __name__ == "__main__":
    main()
