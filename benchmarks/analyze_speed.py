"""How long `analyze` takes over 1,000 models, and where the time goes.

Generates, in a fresh temporary folder, a CPU sweep and a GPU sweep of 1,000 models in all
(MLflow runs written with ``MlflowClient.log_batch``, rows appended to Delta in one commit;
no model is trained for them). The five best are real: small scikit-learn pipelines fitted
on the sweep's data and logged as MLflow models, so the top-5 vote and the champion run for
real. Then it times the analysis in this process, phase by phase (MLflow queries, Delta
read, join, summary, plots, vote, registry, summary table, report, artifact upload), and
once more as a user runs it, ``mlflow run . -e analyze``.

    python benchmarks/analyze_speed.py
    python benchmarks/analyze_speed.py --models 2000 --gpu-share 0.1
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import _harness
import numpy as np

FAMILIES = {
    "logistic": "LogisticRegression",
    "svm": "SVC",
    "random_forest": "RandomForestClassifier",
    "xgboost": "XGBClassifier",
    "gradient_boosting": "GradientBoostingClassifier",
    "naive_bayes": "GaussianNB",
}
STRATEGIES = ("all", "variance", "kbest", "mutual_info", "l1", "tree", "pca")
DATA = {
    "data": "synthetic",
    "target": "",
    "task": "auto",
    "n_samples": "400",
    "n_features": "20",
    "test_size": "0.2",
    "val_size": "0.2",
    "seed": "42",
}
REAL = 5


def generate(work, n_models: int, gpu_share: float) -> dict[str, float]:
    """Write the two sweeps into ``work``; returns seconds spent on each part."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlfleet.config import DataConfig
    from mlfleet.data import load_dataset, split_dataset
    from mlfleet.metrics import predict_with_proba, score_all
    from mlfleet.stores import tracking
    from mlfleet.stores.rows import ResultRow
    from mlfleet.stores.tables import open_results

    rng = np.random.default_rng(0)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment_id = client.create_experiment("bench")
    dataset = load_dataset(DataConfig(n_samples=400))
    split = split_dataset(dataset, seed=42)
    n_gpu = int(round(n_models * gpu_share))
    sweeps = [("train_cpu", n_models - n_gpu, 0), ("train_gpu", n_gpu, n_models - n_gpu)]
    table = str(work / _harness.TABLE)
    results = open_results(table)
    results.ensure()
    spent = {"mlflow_runs_s": 0.0, "real_models_s": 0.0, "delta_rows_s": 0.0}
    start = datetime.now(timezone.utc)
    for entry_point, count, first_id in sweeps:
        sweep_id = f"{entry_point}-bench"
        t0 = time.perf_counter()
        parent = client.create_run(experiment_id, run_name=sweep_id)
        client.log_batch(
            parent.info.run_id,
            params=[Param(k, v) for k, v in {**DATA, "entry_point": entry_point}.items()],
            tags=[
                RunTag(k, v)
                for k, v in {
                    "mlfleet.role": "sweep",
                    "sweep_id": sweep_id,
                    "entry_point": entry_point,
                    "task": "classification",
                    "primary_metric": "f1",
                    "dataset": dataset.name,
                    "dataset_digest": dataset.digest,
                }.items()
            ],
        )
        rows = []
        for i in range(count):
            model_id = first_id + i
            family = "mlp" if entry_point == "train_gpu" else list(FAMILIES)[i % len(FAMILIES)]
            failed = rng.random() < 0.02
            f1 = None if failed else float(rng.uniform(0.30, 0.50))  # below the real models
            tuning, train = float(rng.lognormal(0, 1)), float(rng.lognormal(-2, 1))
            run = client.create_run(
                experiment_id,
                run_name=f"{model_id:03d}-{family}",
                tags={
                    "mlflow.parentRunId": parent.info.run_id,
                    "mlfleet.role": "model",
                    "sweep_id": sweep_id,
                    "entry_point": entry_point,
                    "model_id": str(model_id),
                    "family": family,
                    "device": "cpu",
                    "feature_strategy": STRATEGIES[model_id % len(STRATEGIES)],
                },
            )
            metrics = (
                {} if failed else {"f1": f1, "accuracy": f1 + 0.01, "score": f1, "tuning_s": tuning, "train_s": train}
            )
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                tags=[RunTag("error", "RuntimeError: generated failure")] if failed else [],
            )
            client.set_terminated(run.info.run_id, "FAILED" if failed else "FINISHED")
            rows.append(
                ResultRow(
                    sweep_id=sweep_id,
                    model_id=model_id,
                    model_type="TorchMLPClassifier" if family == "mlp" else FAMILIES[family],
                    family=family,
                    device="cpu",
                    feature_strategy=STRATEGIES[model_id % len(STRATEGIES)],
                    n_features=20,
                    task="classification",
                    params_json="{}",
                    primary_metric="f1",
                    score=f1,
                    accuracy=None if failed else f1 + 0.01,
                    f1=f1,
                    roc_auc=None,
                    log_loss=None,
                    rmse=None,
                    mae=None,
                    r2=None,
                    n_trials=10,
                    tuning_s=None if failed else tuning,
                    train_s=None if failed else train,
                    cpus=1.0,
                    gpus=0.0,
                    status="FAILED" if failed else "FINISHED",
                    error="RuntimeError: generated failure" if failed else "",
                    mlflow_run_id=run.info.run_id,
                    model_uri="",
                    experiment_id=experiment_id,
                    dataset=dataset.name,
                    dataset_digest=dataset.digest,
                    started_at=start + timedelta(seconds=i),
                    finished_at=start + timedelta(seconds=i + 1),
                    node="bench",
                    entry_point=entry_point,
                )
            )
        spent["mlflow_runs_s"] += time.perf_counter() - t0
        if entry_point == "train_cpu":  # the best models are real, logged pipelines
            t0 = time.perf_counter()
            ctx = tracking.TrackingContext(uri, experiment_id, parent.info.run_id, sweep_id, entry_point)
            for j in range(REAL):
                model = make_pipeline(StandardScaler(), LogisticRegression(C=10.0 ** (j - 2), max_iter=500)).fit(
                    split.X_fit, split.y_fit
                )
                pred, proba = predict_with_proba(model, split.X_test, "classification")
                scores = score_all("classification", split.y_test, pred, proba, split.n_classes)
                row = rows[j * len(FAMILIES)]  # logistic models
                uri_j = tracking.finish_child(
                    ctx,
                    row.mlflow_run_id,
                    params={},
                    metrics={**scores, "score": scores["f1"]},
                    history={},
                    tags={},
                    model=model,
                    input_example=split.X_test.head(5),
                )
                rows[j * len(FAMILIES)] = replace(
                    row,
                    f1=scores["f1"],
                    score=scores["f1"],
                    accuracy=scores["accuracy"],
                    roc_auc=scores["roc_auc"],
                    log_loss=scores["log_loss"],
                    model_uri=uri_j,
                    status="FINISHED",
                    error="",
                    tuning_s=row.tuning_s or 1.0,
                    train_s=row.train_s or 0.1,
                )
                client.set_terminated(row.mlflow_run_id, "FINISHED")
            spent["real_models_s"] += time.perf_counter() - t0
        client.set_terminated(parent.info.run_id, "FINISHED")
        t0 = time.perf_counter()
        results.append(rows, f"bench/{sweep_id}")
        spent["delta_rows_s"] += time.perf_counter() - t0
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--gpu-share", type=float, default=0.1)
    args = parser.parse_args()
    work = _harness.workspace("mlfleet-analyze-bench-")
    os.chdir(work)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    for key in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        os.environ.pop(key, None)
    t0 = time.perf_counter()
    spent = generate(work, args.models, args.gpu_share)
    print(
        f"generated {args.models} models ({REAL} of them real logged pipelines) in {time.perf_counter() - t0:.1f} s: "
        + ", ".join(f"{k} {v:.1f}" for k, v in spent.items())
        + f"  (in {work})"
    )

    from mlfleet.commands.analyze import AnalysisConfig, run_analysis

    t0 = time.perf_counter()
    report = run_analysis(AnalysisConfig(experiment="bench", output="reports/bench"), stream=open(os.devnull, "w"))
    total = time.perf_counter() - t0
    accounted = sum(report.timings.values())
    print(
        f"\nanalysis of {report.summary.n_models} models ({report.summary.n_failed} failed, "
        f"{len(report.plan.sweeps)} sweeps), in this process: {total:.1f} s"
    )
    for phase, seconds in sorted(report.timings.items(), key=lambda kv: -kv[1]):
        print(f"  {phase:<14} {seconds:7.2f} s  {seconds / total:6.1%}")
    print(
        f"  {'other':<14} {total - accounted:7.2f} s  {(total - accounted) / total:6.1%}  "
        "(checks, imports, the run itself)"
    )
    print(f"  vote: {report.vote_note}\n  champion: {report.champion_note}")

    done = _harness.run(work, "analyze", ["output=reports/cli"], experiment="bench")
    print(
        f"\n`mlflow run . -e analyze` over the same {report.summary.n_models} models, as a user runs it: "
        f"{done.wall_s:.1f} s wall "
        "(includes starting Python, MLflow's project run and the imports); "
        "its phases, as its run recorded them (cold imports):"
    )
    import mlflow

    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    experiment_id = client.get_experiment_by_name("bench").experiment_id
    latest = client.search_runs(
        [experiment_id], "tags.`mlfleet.role` = 'analysis'", order_by=["attributes.start_time DESC"], max_results=1
    )[0]
    phases = {
        k.removeprefix("time_").removesuffix("_s"): v for k, v in latest.data.metrics.items() if k.startswith("time_")
    }
    for phase, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"  {phase:<14} {seconds:7.2f} s")
    print(
        f"  {'the rest':<14} {done.wall_s - sum(phases.values()):7.2f} s  "
        "(process start, imports, `mlflow run` itself, artifact upload)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
