"""mlfleet's champion against AutoGluon and FLAML: the same rows, the same wall time, the same scoring.

For each table: one outer 80/20 split (seed 42, stratified for classification). The 80% is
written to ``train.csv`` in a temporary folder, the user's training file; the 20% to
``test_X.csv`` (the file's raw columns, without the target) and ``test_y.csv``. Then, in order:

* ``mlfleet``: in a fresh folder, ``mlflow run . -e train_cpu -P data=train.csv -P target=...``
  (plus every ``-P`` given here) and ``mlflow run . -e analyze`` on a sqlite store there; its
  wall is both commands. The champion is loaded with ``mlflow.pyfunc.load_model
  ("models:/<name>@champion")`` and predicts ``test_X.csv`` as read back by ``pd.read_csv``;
  what won is the champion version's ``model_type`` tag.
* ``autogluon_medium``: ``TabularPredictor(...).fit(train, presets="medium_quality")``,
  unconstrained: its natural time.
* ``autogluon_best``: ``presets="best_quality", time_limit=`` mlfleet's wall (or ``--budget``).
* ``flaml``: ``AutoML().fit(X, y, task=..., time_budget=`` mlfleet's wall (or ``--budget``)).
* with ``--x-medium 3``, ``mlfleet_x_medium``: mlfleet again with ``-P time_budget=`` 3x
  AutoGluon medium_quality's fit seconds, to set beside medium_quality's score.
* with ``--today REF``, ``mlfleet_today``: the default ``train_cpu`` (no ``-P``) and analyze of
  the code at git ``REF`` (the commit before a change), then ``mlfleet_at_today``: this code
  with the ``-P`` given and ``-P time_budget=`` that run's wall (train_cpu's, analyze's apart).

AutoGluon and FLAML run in their own venv (``benchmarks/.peers-venv``, created on first use
with the ``bench`` extra of pyproject.toml) as a subprocess (``_peer.py``), each saving its
model and predicting from what it loaded back (AutoGluon ``TabularPredictor.load``, FLAML a
pickle). Both get every core of the machine (``num_cpus``/``n_jobs``, OMP/MKL/OpenBLAS
threads), as mlfleet's local Ray does. A peer's wall is its fit (the seconds its time limit
governs); the subprocess's whole wall (imports, reading, loading back, predicting) is in the
JSON. Every tool's predictions are scored here by ``mlfleet.metrics.score_all``: macro F1 and
accuracy for classification, RMSE and R2 for regression.

    PYTHONPATH=. python benchmarks/quality.py --install-peers        # the peers' venv only
    PYTHONPATH=. python benchmarks/quality.py --tables breast_cancer \\
        -P models=xgboost:2,random_forest:2 -P n_trials=3 --json q.json --markdown q.md
    PYTHONPATH=. python benchmarks/quality.py -P models=portfolio -P time_budget=60 --x-medium 3
    PYTHONPATH=. python benchmarks/quality.py --runs autogluon_medium    # AutoGluon's baseline alone

A tool that fails is reported as failed (its log's tail printed) and the next one runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import _harness
import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
PEERS_VENV = BENCH / ".peers-venv"
SHARED = _harness.REPO.parent / "shared" / "datasets"
EXPERIMENT = "quality"
RUNS = ("mlfleet", "autogluon_medium", "autogluon_best", "flaml")
SCORES = {"classification": ("f1", "accuracy"), "regression": ("rmse", "r2")}
#: variables that would hand the peers' venv the project's packages
FOREIGN_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Table:
    """A table as a user has it: a CSV under --datasets (``file``) or one that mlfleet builds in."""

    name: str
    task: str
    target: str
    file: str = ""
    builtin: str = ""

    def frame(self, args: argparse.Namespace) -> pd.DataFrame:
        if self.file:
            return pd.read_csv(Path(args.datasets) / self.file)
        from mlfleet.data import BUILTINS

        # scikit-learn's bundled sets as their frames (target ``target``), messy at --messy-rows
        return BUILTINS[self.builtin][0](args.messy_rows, 20, args.seed)


@dataclass(frozen=True)
class Files:
    """One table's outer split, as files, and what scoring needs."""

    folder: Path
    train: Path
    test_X: Path
    test_y: Path
    target: str
    task: str
    n_train: int
    n_test: int
    unseen_gaps: dict[str, int]


@dataclass(frozen=True)
class Outcome:
    """One tool on one table: scores on the outer 20%, seconds, what won, or why it failed."""

    run: str
    status: str  # ok, failed, skipped
    scores: dict[str, float] = field(default_factory=dict)
    wall_s: float = float("nan")  # mlfleet: both commands; a peer: its fit
    process_s: float = float("nan")  # the whole subprocess(es)
    budget_s: float = float("nan")  # the time limit it was given, if any
    won: str = ""
    note: str = ""
    load_before: float = float("nan")  # 1-minute load average when it started
    cpu_s: float = float("nan")  # a peer's CPU seconds (user + system): below cores x wall on a busy machine
    details: dict = field(default_factory=dict)


#: the tables of benchmarks/real_tables.py and docs/tables.md, with their targets and tasks
TABLES = {
    t.name: t
    for t in (
        Table("breast_cancer", "classification", "target", builtin="breast_cancer"),
        Table("diabetes", "regression", "target", builtin="diabetes"),
        Table("winequality_red", "classification", "quality", file="winequality-red.csv"),
        Table("winequality_white", "classification", "quality", file="winequality-white.csv"),
        Table("california_housing", "regression", "median_house_value", file="california-housing.csv"),
        Table("messy", "classification", "target", builtin="messy"),
    )
}


def peer_pins() -> list[str]:
    """The ``bench`` extra of pyproject.toml: what the peers' venv installs (Python 3.11+ for tomllib)."""
    import tomllib

    with open(_harness.REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]["bench"]


def peer_env(cpus: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update(dict.fromkeys(THREAD_ENV, str(cpus)))
    return env


def peers_python(venv: Path = PEERS_VENV) -> Path:
    """The peers' interpreter; on first use (or when the pins changed) create the venv and install the pins.

    AutoGluon and FLAML pin their own pandas, scikit-learn and xgboost: they live in their own
    venv and run as a subprocess, so nothing they bring touches the project's environment.
    """
    python = venv / "bin" / "python"
    pins = peer_pins()
    stamp = venv / "bench-pins.txt"
    if python.exists() and stamp.exists() and stamp.read_text().split("\n") == pins:
        return python
    print(f"peers: creating {venv} and installing {' '.join(pins)} (a few minutes, once)", flush=True)
    t0 = time.perf_counter()
    env = peer_env(os.cpu_count() or 1)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, env=env)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True, env=env)
    subprocess.run([python, "-m", "pip", "install", "--quiet", *pins], check=True, env=env)
    stamp.write_text("\n".join(pins))
    print(f"peers: installed in {time.perf_counter() - t0:.0f} s", flush=True)
    return python


def prepare(table: Table, args: argparse.Namespace) -> Files:
    """The outer split of ``table`` written as a user's files in a fresh temporary folder."""
    from sklearn.model_selection import train_test_split

    frame = table.frame(args)
    frame = frame[frame[table.target].notna()].reset_index(drop=True)
    stratify = frame[table.target] if table.task == "classification" else None
    train, test = train_test_split(frame, test_size=0.2, random_state=args.seed, stratify=stratify)
    folder = Path(tempfile.mkdtemp(prefix=f"quality-{table.name}-"))
    files = Files(
        folder,
        folder / "train.csv",
        folder / "test_X.csv",
        folder / "test_y.csv",
        table.target,
        table.task,
        len(train),
        len(test),
        unseen_gaps(train, test),
    )
    train.to_csv(files.train, index=False)
    test.drop(columns=[table.target]).to_csv(files.test_X, index=False)
    test[[table.target]].to_csv(files.test_y, index=False)
    return files


def unseen_gaps(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, int]:
    """Columns with missing values in the scored rows and none in the training rows: column -> count.

    A model never trained on a gap meets it only when scored (California housing's 207 empty
    ``total_bedrooms`` all fall in the 20% of seed 42), which can decide a table's figure.
    """
    gaps = test.isna().sum()
    return {str(c): int(n) for c, n in gaps.items() if n and not train[c].isna().any()}


def score(files: Files, predictions) -> dict[str, float]:
    """The task's two scores of ``predictions`` on the outer 20%, by mlfleet's own metric code."""
    from mlfleet.metrics import score_all

    y_true = pd.read_csv(files.test_y)[files.target].to_numpy()
    y_pred = np.asarray(predictions)
    if files.task == "classification" and y_true.dtype.kind != y_pred.dtype.kind:
        # labels read back as 5 against 5.0 or "5": compare them as text
        y_true, y_pred = _as_text(y_true), _as_text(y_pred)
    scores = score_all(files.task, y_true, y_pred, None)
    return {name: scores[name] for name in SCORES[files.task]}


def _as_text(values: np.ndarray) -> np.ndarray:
    return np.array([str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values.tolist()])


def _children_cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tail(log: Path, lines: int = 25) -> str:
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(text[-lines:])


def run_mlfleet(
    files: Files, params: list[str], run: str, budget: float = float("nan"), repo: Path = _harness.REPO
) -> Outcome:
    """train_cpu then analyze in a fresh folder (the code of ``repo``); the champion predicts the outer 20%."""
    import mlflow

    load = os.getloadavg()[0]
    work = _harness.workspace("quality-mlfleet-", repo)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    walls, codes = {}, {}
    for entry, ps in (("train_cpu", [f"data={files.train}", f"target={files.target}", *params]), ("analyze", [])):
        cmd, env = _harness.command(work, entry, ps, EXPERIMENT)
        env["MLFLOW_TRACKING_URI"] = uri
        print(f"    $ {' '.join(cmd[2:])}  (in {work})", flush=True)
        t0 = time.perf_counter()
        with open(work / f"{entry}.log", "w") as log:
            codes[entry] = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        walls[entry] = time.perf_counter() - t0
    wall = sum(walls.values())
    common = dict(wall_s=wall, process_s=wall, budget_s=budget, load_before=load)
    common["details"] = {"folder": str(work), "walls_s": walls, "exit_codes": codes, "params": params}
    if codes["analyze"] != 0:
        tail = _tail(work / "train_cpu.log") if codes["train_cpu"] else _tail(work / "analyze.log")
        return Outcome(run, "failed", note=f"exit codes {codes}:\n{tail}", **common)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the registry of a table before
    name = _registered_name(client)
    try:
        version = client.get_model_version_by_alias(name, "champion")
    except mlflow.exceptions.MlflowException as exc:
        return Outcome(run, "failed", note=f"no champion of {name!r}: {exc}", **common)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    predictions = model.predict(pd.read_csv(files.test_X))
    common["details"].update(registered_model=name, version=version.version, tags=dict(version.tags))
    note = "" if codes["train_cpu"] == 0 else f"train_cpu exited {codes['train_cpu']} (some models failed)"
    return Outcome(run, "ok", score(files, predictions), won=version.tags.get("model_type", "?"), note=note, **common)


def _registered_name(client) -> str:
    """The champion's registered name as analyze recorded it, else the project's default for the experiment."""
    from mlfleet.stores.registry import default_name

    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], "tags.`mlfleet.role` = 'analysis'", max_results=1)
    return (runs[0].data.tags.get("registered_model") if runs else "") or default_name(EXPERIMENT)


def run_peer(python: Path, tool: str, files: Files, run: str, *, preset: str = "", budget: float = 0.0) -> Outcome:
    """One peer in its venv on the same files; its predictions come back as JSON and are scored here."""
    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0]
    folder = files.folder / run
    result = folder / "result.json"
    folder.mkdir()
    cmd = [str(python), str(BENCH / "_peer.py"), tool, "--train", str(files.train), "--test", str(files.test_X)]
    cmd += ["--target", files.target, "--task", files.task, "--cpus", str(cpus), "--time-limit", f"{budget:.1f}"]
    cmd += ["--folder", str(folder), "--result", str(result)] + (["--preset", preset] if preset else [])
    cpu0, t0 = _children_cpu_s(), time.perf_counter()
    with open(folder / "peer.log", "w") as log:
        code = subprocess.run(cmd, cwd=folder, env=peer_env(cpus), stdout=log, stderr=subprocess.STDOUT).returncode
    process_s, cpu_s = time.perf_counter() - t0, _children_cpu_s() - cpu0
    common = dict(process_s=process_s, cpu_s=cpu_s, budget_s=budget or float("nan"), load_before=load)
    if code != 0 or not result.exists():
        return Outcome(run, "failed", note=f"exit code {code}:\n{_tail(folder / 'peer.log')}", **common)
    out = json.loads(result.read_text())
    predictions = out.pop("predictions")
    fit_s = out.pop("fit_s")
    return Outcome(run, "ok", score(files, predictions), wall_s=fit_s, won=out.pop("won"), details=out, **common)


def bench_table(table: Table, args: argparse.Namespace, python: Path | None) -> dict:
    """Every run of ``args.runs`` on one table, in order, each announced as it starts and ends."""
    files = prepare(table, args)
    print(
        f"\n[{table.name}] {table.task}, target {table.target}: {files.n_train} rows to train, "
        f"{files.n_test} to score, in {files.folder}",
        flush=True,
    )
    for column, n in files.unseen_gaps.items():
        print(f"[{table.name}] note: {column} has {n} missing values in the scored rows and none in training")
    outcomes: dict[str, Outcome] = {}

    def step(run: str, go: Callable[[], Outcome], what: str) -> None:
        print(f"[{table.name}] {run}: start ({what}), load {os.getloadavg()[0]:.1f}", flush=True)
        try:
            done = go()
        except Exception:  # a champion that does not load or predict, a bad result: the next tool still runs
            done = Outcome(run, "failed", note=traceback.format_exc(limit=-3))
        outcomes[run] = done
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in done.scores.items())
        figures += f", CPU {done.cpu_s:.0f} s" if done.cpu_s == done.cpu_s else ""
        print(
            f"[{table.name}] {run}: {done.status} in {done.process_s:.1f} s (wall {done.wall_s:.1f} s) "
            f"{figures} {('won: ' + done.won) if done.won else ''}",
            flush=True,
        )
        if done.note:
            print("    " + done.note.replace("\n", "\n    "), flush=True)

    if "mlfleet" in args.runs:
        step("mlfleet", lambda: run_mlfleet(files, args.param, "mlfleet"), " ".join(f"-P {p}" for p in args.param))
    if "autogluon_medium" in args.runs:
        step(
            "autogluon_medium",
            lambda: run_peer(python, "autogluon", files, "autogluon_medium", preset="medium_quality"),
            "presets=medium_quality, no time limit",
        )
    ours = outcomes.get("mlfleet")
    budget = args.budget or (ours.wall_s if ours is not None and ours.status == "ok" else 0.0)
    for run, tool, preset in (("autogluon_best", "autogluon", "best_quality"), ("flaml", "flaml", "")):
        if run not in args.runs:
            continue
        if not budget > 0:
            outcomes[run] = Outcome(run, "skipped", note="no budget: mlfleet failed or did not run, no --budget")
            continue
        step(
            run,
            lambda r=run, t=tool, p=preset: run_peer(python, t, files, r, preset=p, budget=budget),
            f"{'presets=' + preset + ', ' if preset else ''}time limit {budget:.1f} s",
        )
    medium = outcomes.get("autogluon_medium")
    if args.x_medium and medium is not None and medium.status == "ok":
        x_budget = round(args.x_medium * medium.wall_s)
        params = [p for p in args.param if not p.startswith(args.budget_param + "=")]
        params.append(f"{args.budget_param}={x_budget}")
        step(
            "mlfleet_x_medium",
            lambda: run_mlfleet(files, params, "mlfleet_x_medium", x_budget),
            f"-P {args.budget_param}={x_budget}, {args.x_medium:g}x medium_quality's {medium.wall_s:.1f} s",
        )
    if args.today:
        step("mlfleet_today", lambda: run_mlfleet(files, [], "mlfleet_today", repo=args.today_files), f"{args.today}")
        today = outcomes["mlfleet_today"]
        if today.status == "ok":
            t_budget = round(today.details["walls_s"]["train_cpu"])
            params = [p for p in args.param if not p.startswith(args.budget_param + "=")]
            params.append(f"{args.budget_param}={t_budget}")
            step(
                "mlfleet_at_today",
                lambda: run_mlfleet(files, params, "mlfleet_at_today", t_budget),
                f"-P {args.budget_param}={t_budget}, the train_cpu wall of {args.today}'s default",
            )
    if not args.keep:
        shutil.rmtree(files.folder, ignore_errors=True)
        for o in outcomes.values():
            if "folder" in o.details and o.status == "ok":  # a failed run's folder stays, to be read
                shutil.rmtree(o.details["folder"], ignore_errors=True)
    sizes = {"n_train": files.n_train, "n_test": files.n_test, "unseen_gaps": files.unseen_gaps}
    return {"task": table.task, "target": table.target, **sizes, "outcomes": outcomes}


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4f}"


def _cell(outcome: Outcome | None, *, wall: bool = False) -> str:
    if outcome is None:
        return ""
    if outcome.status != "ok":
        return outcome.status
    if wall:
        return f"{outcome.wall_s:.0f} s"
    return " / ".join(_fmt(v) for v in outcome.scores.values())


def markdown(results: dict[str, dict], x_medium: float) -> str:
    """One row per table: every tool's scores (primary / secondary), mlfleet's and medium_quality's walls."""
    head = [
        "table",
        "task",
        "rows (train/test)",
        "metric",
        "mlfleet",
        "wall",
        "won",
        "AutoGluon medium",
        "wall",
        "AutoGluon best (same wall)",
        "FLAML (same wall)",
    ]
    if x_medium:
        head += [f"mlfleet at {x_medium:g}x medium's wall", "wall"]
    today = any("mlfleet_today" in r["outcomes"] for r in results.values())
    if today:
        head += ["default of before", "wall", "mlfleet at its wall", "wall"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, r in results.items():
        o = r["outcomes"]
        row = [name, r["task"], f"{r['n_train']:,}/{r['n_test']:,}", " / ".join(SCORES[r["task"]])]
        row += [_cell(o.get("mlfleet")), _cell(o.get("mlfleet"), wall=True), o["mlfleet"].won if "mlfleet" in o else ""]
        row += [_cell(o.get("autogluon_medium")), _cell(o.get("autogluon_medium"), wall=True)]
        row += [_cell(o.get("autogluon_best")), _cell(o.get("flaml"))]
        if x_medium:
            row += [_cell(o.get("mlfleet_x_medium")), _cell(o.get("mlfleet_x_medium"), wall=True)]
        if today:
            row += [_cell(o.get("mlfleet_today")), _cell(o.get("mlfleet_today"), wall=True)]
            row += [_cell(o.get("mlfleet_at_today")), _cell(o.get("mlfleet_at_today"), wall=True)]
        lines.append("| " + " | ".join(row) + " |")
    notes = [
        f"{name}: `{column}` has {n} missing values in the scored rows and none in the training rows."
        for name, r in results.items()
        for column, n in r["unseen_gaps"].items()
    ]
    return "\n".join(lines) + "\n" + "".join("\n" + note + "\n" for note in notes)


def save(results: dict[str, dict], args: argparse.Namespace) -> str:
    """Write the JSON and the markdown (when asked); return the markdown."""
    text = markdown(results, args.x_medium)
    if args.json:
        plain = {n: {**r, "outcomes": {k: asdict(v) for k, v in r["outcomes"].items()}} for n, r in results.items()}
        machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "argv": sys.argv[1:]}
        Path(args.json).write_text(json.dumps({"machine": machine, "tables": plain}, indent=2, default=str))
    if args.markdown:
        Path(args.markdown).write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated, from: " + ", ".join(TABLES))
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated, from: " + ", ".join(RUNS))
    parser.add_argument(
        "-P",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of mlfleet's train_cpu, e.g. -P models=portfolio -P time_budget=60",
    )
    parser.add_argument(
        "--budget", type=float, default=0.0, help="seconds for autogluon_best and flaml instead of mlfleet's wall"
    )
    parser.add_argument(
        "--x-medium",
        type=float,
        default=0.0,
        help="also run mlfleet with -P <budget-param>= this many times medium_quality's fit seconds",
    )
    parser.add_argument("--budget-param", default="time_budget", help="mlfleet's parameter for --x-medium")
    parser.add_argument(
        "--today", default="", metavar="REF", help="also run the default train_cpu of git REF and this code at its wall"
    )
    parser.add_argument("--messy-rows", type=int, default=20_000)
    parser.add_argument("--datasets", default=str(SHARED), help="the folder of the Wine Quality and housing CSVs")
    parser.add_argument("--seed", type=int, default=42, help="the outer split's seed")
    parser.add_argument("--peers-venv", type=Path, default=PEERS_VENV)
    parser.add_argument("--install-peers", action="store_true", help="create the peers' venv and stop")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (files, models, stores)")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--markdown", help="write the table here")
    args = parser.parse_args()
    if args.install_peers:
        peers_python(args.peers_venv)
        return
    args.runs = args.runs.split(",")
    unknown = sorted(set(args.runs) - set(RUNS)) + sorted(set(args.tables.split(",")) - set(TABLES))
    if unknown:
        parser.error(f"unknown runs or tables: {', '.join(unknown)}")
    files = [TABLES[name].file for name in args.tables.split(",")]
    missing = [f for f in files if f and not (Path(args.datasets) / f).exists()]
    if missing:
        parser.error(f"{', '.join(missing)} not in --datasets {args.datasets}; pass the folder that has them")
    if args.x_medium and "autogluon_medium" not in args.runs:
        parser.error("--x-medium needs autogluon_medium in --runs (its fit seconds set the budget)")
    python = peers_python(args.peers_venv) if set(args.runs) - {"mlfleet"} else None
    args.today_files = _harness.checkout(args.today) if args.today else None
    results: dict[str, dict] = {}
    for name in args.tables.split(","):
        results[name] = bench_table(TABLES[name], args, python)
        save(results, args)
    print("\n" + save(results, args))


if __name__ == "__main__":
    main()
