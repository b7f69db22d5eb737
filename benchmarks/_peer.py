"""One peer AutoML tool on quality.py's files; runs inside benchmarks/.peers-venv, never imports mlfleet.

Reads the training CSV, fits, saves the model as its tool does, loads it back, predicts the
test features (read with ``pd.read_csv``) and writes a JSON: the predictions, the seconds of the
fit and what won. Scoring is quality.py's, the same code for every tool.

    .peers-venv/bin/python _peer.py autogluon --train train.csv --test test_X.csv --target y \\
        --task classification --preset medium_quality --folder out/ --result out/result.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import pandas as pd


def autogluon(args: argparse.Namespace, train: pd.DataFrame, X_test: pd.DataFrame) -> tuple[list, dict]:
    """Fit a TabularPredictor (preset, time limit), load it from its folder, predict."""
    from autogluon.tabular import TabularPredictor

    if args.task == "classification":
        problem, metric = ("binary" if train[args.target].nunique() == 2 else "multiclass"), "f1_macro"
    else:
        problem, metric = "regression", "root_mean_squared_error"
    path = str(args.folder / "model")
    predictor = TabularPredictor(label=args.target, path=path, problem_type=problem, eval_metric=metric, verbosity=1)
    t0 = time.perf_counter()
    predictor.fit(train, presets=args.preset, time_limit=args.time_limit or None, num_cpus=args.cpus)
    fit_s = time.perf_counter() - t0
    loaded = TabularPredictor.load(path)
    board = loaded.leaderboard(silent=True)  # best validation score first
    singles = board[~board["model"].str.startswith("WeightedEnsemble")]
    return loaded.predict(X_test).tolist(), {
        "fit_s": fit_s,
        "won": str(loaded.model_best),
        "best_single": str(singles["model"].iloc[0]) if len(singles) else "",
        "n_models": int(len(board)),
        "models": board["model"].tolist(),
    }


def flaml(args: argparse.Namespace, train: pd.DataFrame, X_test: pd.DataFrame) -> tuple[list, dict]:
    """Fit FLAML's AutoML for the time budget, pickle it, load the pickle back, predict."""
    from flaml import AutoML

    X, y = train.drop(columns=[args.target]), train[args.target]
    automl = AutoML()
    t0 = time.perf_counter()
    automl.fit(
        X,
        y,
        task=args.task,
        metric="macro_f1" if args.task == "classification" else "rmse",
        time_budget=args.time_limit,
        n_jobs=args.cpus,
        seed=args.seed,
        log_file_name=str(args.folder / "flaml.log"),
        verbose=0,
    )
    fit_s = time.perf_counter() - t0
    saved = args.folder / "automl.pkl"
    with open(saved, "wb") as f:
        pickle.dump(automl, f)
    with open(saved, "rb") as f:
        loaded = pickle.load(f)
    return pd.Series(loaded.predict(X_test)).tolist(), {
        "fit_s": fit_s,
        "won": str(loaded.best_estimator),
        "best_config": loaded.best_config,
    }


TOOLS = {"autogluon": autogluon, "flaml": flaml}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool", choices=sorted(TOOLS))
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True, help="the test rows' features, without the target")
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", choices=("classification", "regression"), required=True)
    parser.add_argument("--preset", default="medium_quality", help="AutoGluon's presets")
    parser.add_argument("--time-limit", type=float, default=0.0, help="seconds; 0: the tool's own (AutoGluon: none)")
    parser.add_argument("--cpus", type=int, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--folder", type=Path, required=True, help="where the tool saves its model")
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args()
    if args.tool == "flaml" and args.time_limit <= 0:
        parser.error("flaml needs --time-limit above 0")
    args.folder.mkdir(parents=True, exist_ok=True)
    train, X_test = pd.read_csv(args.train), pd.read_csv(args.test)
    predictions, details = TOOLS[args.tool](args, train, X_test)
    args.result.write_text(json.dumps({"predictions": predictions, **details}, default=str))


if __name__ == "__main__":
    main()
