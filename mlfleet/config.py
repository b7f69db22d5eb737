"""Frozen configurations, one per command: the single source of every parameter.

Each field is a parameter: its name (``--first_id`` on the command line, ``-P first_id=...``
under ``mlflow run``, ``first_id=`` in the Python API), default, help and validation live
here, in the field's metadata. :mod:`mlfleet.cli` generates the click options from these
classes, ``docs/parameters.md`` is generated from them, and a test checks that MLproject
declares the same names and defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mlfleet.errors import MlfleetError
from mlfleet.redaction import redact

#: the CPU fleet: 90 models, ids 0-89
CPU_FLEET = (
    ("logistic", 15),
    ("svm", 10),
    ("random_forest", 20),
    ("xgboost", 20),
    ("gradient_boosting", 15),
    ("naive_bayes", 10),
)
#: the quality-first fleet (``models=portfolio``): one model of each strong family, every one on all
#: the features, started from its known-good defaults; meant for a ``time_budget`` and an ensemble
PORTFOLIO = (
    ("lightgbm", 1),
    ("xgboost", 1),
    ("hist_gradient_boosting", 1),
    ("extra_trees", 1),
    ("random_forest", 1),
    ("logistic", 1),
)
#: fleets by name: what ``models=NAME`` means
NAMED_FLEETS = {"seed": CPU_FLEET, "portfolio": PORTFOLIO}
#: the GPU fleet: 10 MLPs, ids 90-99
GPU_FLEET = (("mlp", 10),)
DEFAULT_GPU_FIRST_ID = 90
DEFAULT_RESULTS = "lakehouse/model_training_results"
TASKS = ("auto", "classification", "regression")
DEVICES = ("auto", "cuda", "cpu")
#: how an ensemble's members' votes are weighted: equally, or by each member's validation score
WEIGHTS = ("equal", "validation")
#: where an ensemble's shards of a Parquet or Delta table are read: on the workers when it is big (auto), always, never
SHARDING = ("auto", "on", "off")
MODES = ("sequential", "ray", "joblib")


def param(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    name: str = "",
    choices: tuple[str, ...] = (),
    low: float | None = None,
    high: float | None = None,
    open_ends: bool = False,
    parse: Callable[[str], Any] | None = None,
    show: Callable[[Any], str] = str,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A config field that is a parameter: its help, checks and text form.

    ``name`` is the parameter's name when it differs from the field's; ``low``/``high``
    bound a number (``open_ends``: both ends excluded); ``parse`` turns the parameter's
    text into the field's value (raising MlfleetError) and ``show`` the value back into text.
    """
    metadata = {
        "help": help,
        "name": name,
        "choices": choices,
        "low": low,
        "high": high,
        "open_ends": open_ends,
        "parse": parse,
        "show": show,
    }
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Parameter:
    """One leaf parameter of a config: where it sits (``path``), its name and metadata."""

    path: tuple[str, ...]
    name: str
    default: Any
    help: str
    choices: tuple[str, ...]
    low: float | None
    high: float | None
    open_ends: bool
    parse: Callable[[str], Any] | None
    show: Callable[[Any], str]

    @property
    def default_text(self) -> str:
        return self.show(self.default)


def parameters(config_type: type, *, hidden: bool = False) -> Iterator[Parameter]:
    """The leaf parameters of ``config_type`` in field order; nested configs (``data``) are flattened.

    ``hidden`` includes what the command does not offer (``device`` of the CPU fleet).
    """
    skipped = set(getattr(config_type, "HIDDEN", ())) if not hidden else set()
    yield from _leaves(config_type, config_type(), (), skipped)


def _leaves(config_type: type, instance: Any, prefix: tuple[str, ...], skipped: set[str]) -> Iterator[Parameter]:
    for f in dataclasses.fields(config_type):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            yield from _leaves(type(value), value, (*prefix, f.name), skipped | set(getattr(config_type, "HIDDEN", ())))
            continue
        if "help" not in f.metadata:
            continue
        m = f.metadata
        name = m["name"] or f.name
        if name in skipped:
            continue
        yield Parameter(
            (*prefix, f.name),
            name,
            value,
            m["help"],
            m["choices"],
            m["low"],
            m["high"],
            m["open_ends"],
            m["parse"],
            m["show"],
        )


def from_values(config_type: type, values: dict[str, Any]) -> Any:
    """A ``config_type`` from parameter values by name (text is parsed as on the command line).

    Unknown names raise MlfleetError naming the known ones; names not given keep their defaults.
    """
    known = {p.name: p for p in parameters(config_type, hidden=True)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise MlfleetError(
            f"unknown parameter(s) {', '.join(unknown)}; {config_type.__name__} takes {', '.join(known)}"
        )
    nested: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, value in values.items():
        p = known[name]
        if isinstance(value, str):
            value = p.parse(value) if p.parse is not None else _number(p, value)
        _check(p, value)
        if len(p.path) == 1:
            top[p.path[0]] = value
        else:
            nested.setdefault(p.path[0], {})[p.path[1]] = value
    base = config_type()
    for outer, inner in nested.items():
        top[outer] = dataclasses.replace(getattr(base, outer), **inner)
    return dataclasses.replace(base, **top)


def _check(p: Parameter, value: Any) -> None:
    """The checks the command line's options make (choices, bounds), for values given in Python."""
    if p.choices and value not in p.choices:
        raise MlfleetError(f"{p.name} must be one of {', '.join(p.choices)}, but got {p.name}={value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    low_ok = p.low is None or (value > p.low if p.open_ends else value >= p.low)
    high_ok = p.high is None or (value < p.high if p.open_ends else value <= p.high)
    if not (low_ok and high_ok):
        bounds = " and ".join(
            part
            for part in (
                f"{'above' if p.open_ends else 'at least'} {p.low:g}" if p.low is not None else "",
                f"{'below' if p.open_ends else 'at most'} {p.high:g}" if p.high is not None else "",
            )
            if part
        )
        raise MlfleetError(f"{p.name} must be {bounds}, but got {p.name}={value!r}")


def _number(p: Parameter, text: str) -> Any:
    """The text of a number parameter as its number (as click parses it); other text stays text."""
    if isinstance(p.default, bool) or not isinstance(p.default, int | float):
        return text
    kind, what = (int, "a whole number") if isinstance(p.default, int) else (float, "a number")
    try:
        return kind(text.strip())
    except ValueError:
        raise MlfleetError(f"{p.name} must be {what}, but got {p.name}={text!r}") from None


def logged_params(config: Any) -> dict[str, str]:
    """The config's parameters as the strings MLflow stores (also what resume compares).

    Credentials a URI may carry (``https://user:password@...``, a signed query) are redacted:
    parameters are for reading, and anyone with the experiment can read them. Fields in the
    class's ``NOT_LOGGED`` (where a command runs, not what it does) are left out.
    """
    skipped = set(getattr(type(config), "NOT_LOGGED", ()))
    out = {}
    for p in parameters(type(config), hidden=True):
        if p.name in skipped:
            continue
        value = config
        for part in p.path:
            value = getattr(value, part)
        out[p.name] = redact(p.show(value))
    return out


def parse_models(text: str, known: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """Parse ``"logistic:15,svm:10"`` into ``(("logistic", 15), ("svm", 10))``; a fleet's name (``portfolio``,
    ``seed``) into its composition.

    A family without a count means one model. Raises MlfleetError for an unknown family,
    a count that is not a whole number of at least 1, or an empty composition.
    """
    if text.strip() in NAMED_FLEETS and all(name in known for name, _ in NAMED_FLEETS[text.strip()]):
        return NAMED_FLEETS[text.strip()]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise MlfleetError(f"models must name at least one family such as 'random_forest:5', but got models={text!r}")
    composition: dict[str, int] = {}
    for part in parts:
        name, _, count_text = part.partition(":")
        name = name.strip()
        if name not in known:
            raise MlfleetError(f"unknown model family {name!r} in models={text!r}; known families: {', '.join(known)}")
        try:
            count = int(count_text) if count_text.strip() else 1
        except ValueError:
            raise MlfleetError(
                f"the count after {name!r} must be a whole number, but got {part!r} in models={text!r}"
            ) from None
        if count < 1:
            raise MlfleetError(f"the count of each family must be at least 1, but got {part!r} in models={text!r}")
        composition[name] = composition.get(name, 0) + count
    return tuple(composition.items())


def format_models(models: tuple[tuple[str, int], ...]) -> str:
    """The inverse of :func:`parse_models` (a named fleet shows as its composition)."""
    return ",".join(f"{name}:{count}" for name, count in models)


def fleet_strategies(models: tuple[tuple[str, int], ...]) -> tuple[str, ...] | None:
    """The feature strategies a fleet's models go round: the portfolio's use every feature; any other fleet
    deals the seven strategies round (None: the default)."""
    return ("all",) if tuple(models) == PORTFOLIO else None


def _cpu_models(text: str) -> tuple[tuple[str, int], ...]:
    from mlfleet.zoo import cpu_families

    return parse_models(text, cpu_families())


def _gpu_models(text: str) -> tuple[tuple[str, int], ...]:
    from mlfleet.zoo import gpu_families

    return parse_models(text, gpu_families())


def parse_list(text: str) -> tuple[str, ...]:
    """``"a, b,a"`` -> ``("a", "b")``: comma-separated names, blanks and repeats dropped."""
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def _joined(values: tuple[str, ...]) -> str:
    return ",".join(values)


def _results(default: str, what: str, *, spark: bool = True) -> Any:
    spark_table = (
        ", or a Spark table catalog.schema.table" if spark else " (a Delta table; Spark tables are not offered)"
    )
    return param(default, help=f"{what}: a folder or an s3://, abfss:// or gs:// URI{spark_table}.")


def _address() -> Any:
    return param(
        "",
        help=(
            "Ray: empty starts a local Ray (or joins RAY_ADDRESS); auto, host:port or ray://host:port joins a cluster."
        ),
    )


def _experiment() -> Any:
    return param(
        "",
        help="MLflow experiment when the command runs by itself (default mlfleet); under `mlflow run`, "
        "its --experiment-name applies.",
    )


def _metric(what: str) -> Any:
    return param(
        "",
        help=f"Metric that {what}: accuracy, f1 (macro), roc_auc, log_loss, or rmse, mae, r2 "
        "(default f1 for classification, rmse for regression).",
    )


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split.

    ``source`` is a built-in name (``synthetic``, ``diabetes``, ...) or a path/URI to a CSV,
    Parquet file or Delta table. ``n_samples``/``n_features`` size the synthetic sets only.
    ``seed`` seeds the data, the split and every model (``seed + model_id``).
    """

    source: str = param(
        "synthetic",
        name="data",
        help="A built-in set (synthetic, synthetic_regression, messy, diabetes, breast_cancer, wine, iris, "
        "california_housing), or a path/URI to a CSV, Parquet file or folder, Delta table, or a Spark table.",
    )
    target: str = param(
        "",
        help="Target column (default: the set's own; for files 'target' if present, else the last column); "
        "a rule such as quality>=6 makes a 0/1 target.",
    )
    task: str = param(
        "auto",
        choices=TASKS,
        help="classification or regression to force it; auto takes text, boolean and integer targets with at "
        "most 20 values as classes.",
    )
    drop: str = param(
        "",
        help="Columns to leave out, comma-separated (identifiers and constant columns are left out already).",
    )
    n_samples: int = param(3000, low=10, help="Rows of the synthetic sets.")
    n_features: int = param(20, low=2, help="Columns of the synthetic sets.")
    test_size: float = param(0.2, low=0, high=1, open_ends=True, help="Share of all rows for the test split.")
    val_size: float = param(
        0.2, low=0, high=1, open_ends=True, help="Share of all rows for the validation split (stratified by class)."
    )
    seed: int = param(42, help="Seeds the data, the split, every model (seed + model_id) and its Optuna sampler.")


@dataclass(frozen=True)
class FleetConfig:
    """One sweep of the CPU fleet (``train_cpu``): the data, the fleet's composition and where results go."""

    HIDDEN: ClassVar[tuple[str, ...]] = ("device", "gpus_per_model")
    #: where and for how long a sweep runs, not what it trains: not logged, and a resume may change them
    NOT_LOGGED: ClassVar[tuple[str, ...]] = ("address", "experiment", "resume", "model_timeout", "timeout")

    data: DataConfig = field(default_factory=DataConfig)
    models: tuple[tuple[str, int], ...] = param(
        CPU_FLEET,
        parse=_cpu_models,
        show=format_models,
        help="The fleet's composition, family:count,... or a named fleet: portfolio (one model of each strong "
        "family on every feature: for quality, with time_budget) or seed (the default 90 models).",
    )
    first_id: int = param(0, low=0, help="Id of the first model; the others follow in composition order.")
    n_trials: int = param(
        10, low=1, help="Optuna TPE trials per model, the first its family's defaults (with time_budget: at most)."
    )
    metric: str = _metric("is optimised and ranks the models")
    results: str = _results(DEFAULT_RESULTS, "Delta table of one row per model")
    address: str = _address()
    experiment: str = _experiment()
    resume: str = param(
        "",
        help="A sweep id (printed at the start of every sweep): continue that sweep with the same parameters; "
        "complete models are skipped, the rest trained.",
    )
    model_timeout: float = param(
        0.0,
        low=0,
        help="Seconds a model may tune and train; past it the model is cancelled, its run and row FAILED "
        "('timed out after N s'), and the fleet goes on. 0: no limit.",
    )
    timeout: float = param(
        0.0,
        low=0,
        help="Seconds the whole sweep may train; then queued models do not start, running ones are cancelled "
        "(FAILED), and the command exits 1 (resume trains what is not finished). 0: no limit.",
    )
    time_budget: float = param(
        0.0,
        low=0,
        help="Seconds the fleet may take: every model gets its default trial first, then the better half more "
        "trials, round after round; at the budget every model with a trial is refitted and logged, exit 0. "
        "0: every model its n_trials.",
    )
    sample: int = param(
        0,
        low=0,
        help="Train on this many of the training rows: a sample stratified by class, drawn with the seed, for a "
        "table too big to train on whole (validation and test rows are all kept, so scores compare). 0: every "
        "training row.",
    )
    ensemble: int = param(
        0,
        low=0,
        help="At the sweep's close, build the fleet's ensemble of at most this many models: greedy selection "
        "over the finished models' validation predictions, logged as a run of its own. 0: none (analyze builds "
        "one over every comparable sweep anyway).",
    )
    entry_point: str = "train_cpu"
    device: str = param(
        "cpu",
        choices=DEVICES,
        help="auto: GPUs when the Ray cluster has them, else CPU; cuda: stop when there is none; cpu: never a GPU.",
    )
    gpus_per_model: float = param(
        1.0,
        low=0,
        open_ends=True,
        help="GPUs each model asks Ray for; fractions such as 0.25 share a GPU.",
    )

    def params(self) -> dict[str, str]:
        """The sweep's parameters as MLflow stores them (see :func:`logged_params`)."""
        return logged_params(self)


@dataclass(frozen=True)
class GpuFleetConfig(FleetConfig):
    """One sweep of the GPU fleet (``train_gpu``): PyTorch MLPs, one GPU (or a fraction) each, CPU fallback."""

    HIDDEN: ClassVar[tuple[str, ...]] = ()

    models: tuple[tuple[str, int], ...] = param(
        GPU_FLEET, parse=_gpu_models, show=format_models, help="The MLP fleet, mlp:count."
    )
    first_id: int = param(DEFAULT_GPU_FIRST_ID, low=0, help="Id of the first model (90: after train_cpu's 0-89).")
    entry_point: str = "train_gpu"
    device: str = param(
        "auto",
        choices=DEVICES,
        help="auto: GPUs when the Ray cluster has them, else CPU; cuda: stop when there is none; cpu: never a GPU.",
    )


@dataclass(frozen=True)
class BenchmarkConfig:
    """One benchmark: the same ``n_models`` models trained in each of ``modes``."""

    HIDDEN: ClassVar[tuple[str, ...]] = ("val_size",)
    NOT_LOGGED: ClassVar[tuple[str, ...]] = ("address", "experiment")

    data: DataConfig = field(default_factory=DataConfig)
    preset: str = param(
        "", help="A preset: california_rf30, wine_rf10 or diabetes_gb20 (its model, ladder, parameters and data)."
    )
    model: str = param("random_forest", help="The zoo family of every model.")
    n_models: int = param(20, help="How many models, each a step of the ladder.")
    ladder: str = param(
        "n_estimators=50:240",
        help="name=low:high,...: model i gets the i-th of n_models evenly spaced values (whole numbers stay whole).",
    )
    params: str = param("", help="name=value,...: parameters fixed for every model (e.g. max_depth=20).")
    modes: tuple[str, ...] = param(MODES, parse=parse_list, show=_joined, help="Which modes run, comma-separated.")
    repeats: int = param(1, help="Runs of each mode (interleaved); the median is reported.")
    results: str = _results("lakehouse/benchmark_results", "Delta table of one row per mode and benchmark", spark=False)
    address: str = _address()
    experiment: str = _experiment()


@dataclass(frozen=True)
class EnsembleConfig:
    """One partition ensemble: the data, how it is sharded, the members' family, where results go.

    ``partition_by`` (a feature column) replaces ``partitions``: one shard per value of the
    column. ``n_trials`` 0 fits the family's default parameters; above 0 each member (and the
    single all-data model) runs its own Optuna study on its own rows. ``sharded`` decides whether
    a Parquet or Delta table's shards are read on the workers (see :mod:`mlfleet.commands.ensemble.sharded`).
    """

    NOT_LOGGED: ClassVar[tuple[str, ...]] = ("address", "experiment")

    data: DataConfig = field(default_factory=DataConfig)
    partitions: int = param(4, help="Shards of the training split, one member each (stratified for classification).")
    partition_by: str = param(
        "",
        help="A feature column: one shard per value of it instead of random shards (partitions is then not used); "
        "with a sharded table, partitions shards by a hash of its values.",
    )
    sharded: str = param(
        "auto",
        choices=SHARDING,
        help="A Parquet or Delta table read on the workers, each member reading only its shard: auto when its "
        "estimated size in pandas, 3 times over, is more than the memory available (MLFLEET_MEMORY_BYTES, else "
        "the machine's); on always; off never (the driver reads it whole).",
    )
    single_rows: int = param(
        0,
        low=0,
        help="With a sharded table, the training rows the single model learns from: a sample, stratified by "
        "class; 0: as many as one member's shard.",
    )
    model: str = param(
        "random_forest", help="Zoo family of the members and of the single all-data model (a CPU family)."
    )
    n_trials: int = param(
        0, low=0, help="0: the family's default parameters; above 0: Optuna trials each member runs on its own shard."
    )
    weights: str = param("equal", choices=WEIGHTS, help="Members' votes weigh equally, or by their validation score.")
    metric: str = _metric("scores, weighs and compares the models")
    register: str = param(
        "", help="Register the ensemble in the MLflow Model Registry under this name (empty: do not register)."
    )
    results: str = _results("lakehouse/ensemble_results", "Delta table of ensemble rows", spark=False)
    address: str = _address()
    experiment: str = _experiment()
    entry_point: str = "ensemble"

    @property
    def seed(self) -> int:
        return self.data.seed

    def params(self) -> dict[str, str]:
        """The parameters as MLflow stores them (see :func:`logged_params`)."""
        return logged_params(self)


@dataclass(frozen=True)
class AnalysisConfig:
    """One analysis: which experiment, table and sweeps; the metric, the ensemble's most members, the
    registry name and the report folder. Empty strings mean the documented defaults."""

    experiment: str = param(
        "",
        help="MLflow experiment of the sweeps when run by itself (default mlfleet; under `mlflow run`, "
        "its --experiment-name applies).",
    )
    results: str = _results(DEFAULT_RESULTS, "Delta table of the sweeps' rows")
    sweeps: tuple[str, ...] = param(
        (),
        name="sweep",
        parse=parse_list,
        show=_joined,
        help="Sweep ids to analyse, comma-separated (default: the latest sweep of each entry point).",
    )
    metric: str = param("", help="Metric to rank by (default: the sweeps' primary metric).")
    k: int = param(
        8,
        low=1,
        help="The most models the ensemble (selected over every model's validation predictions) may hold: "
        "what it costs to serve.",
    )
    registered_model: str = param("", help="Registered model for the champion (default: <experiment>-champion).")
    output: str = param("", help="Folder for the report and plots (default: reports/<analysis id>).")

    def params(self) -> dict[str, str]:
        """The parameters as given, as MLflow stores them."""
        return logged_params(self)
