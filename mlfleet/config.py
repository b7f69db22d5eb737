"""Frozen configurations: what a command line turns into before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mlfleet.errors import MlfleetError
from mlfleet.redaction import redact

DEFAULT_CPU_MODELS = "logistic:15,svm:10,random_forest:20,xgboost:20,gradient_boosting:15,naive_bayes:10"
DEFAULT_GPU_MODELS = "mlp:10"
DEFAULT_GPU_FIRST_ID = 90
DEFAULT_RESULTS = "lakehouse/model_training_results"
TASKS = ("auto", "classification", "regression")


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split.

    ``source`` is a built-in name (``synthetic``, ``diabetes``, ...) or a path/URI to a CSV,
    Parquet file or Delta table. ``n_samples``/``n_features`` size the synthetic sets only.
    """

    source: str = "synthetic"
    target: str = ""
    task: str = "auto"
    n_samples: int = 3000
    n_features: int = 20
    test_size: float = 0.2
    val_size: float = 0.2
    seed: int = 42


@dataclass(frozen=True)
class FleetConfig:
    """One sweep: the data, the fleet's composition and where results go."""

    data: DataConfig = field(default_factory=DataConfig)
    models: tuple[tuple[str, int], ...] = ()
    first_id: int = 0
    n_trials: int = 10
    metric: str = ""
    results: str = DEFAULT_RESULTS
    address: str = ""
    experiment: str = ""
    entry_point: str = "train_cpu"
    seed: int = 42
    device: str = "cpu"  # for GPU families: auto, cuda or cpu
    gpus_per_model: float = 1.0
    resume: str = ""  # the id of a sweep to continue (not one of the sweep's parameters)

    def params(self) -> dict[str, str]:
        """The sweep's parameters as the strings MLflow stores (also what resume compares).

        Credentials a URI may carry (``https://user:password@...``, a signed query) are
        redacted: parameters are for reading, and anyone with the experiment can read them.
        """
        flat = {k: v for k, v in asdict(self.data).items() if k != "seed"}
        flat["data"] = flat.pop("source")
        flat.update(
            models=format_models(self.models),
            first_id=self.first_id,
            n_trials=self.n_trials,
            metric=self.metric,
            results=self.results,
            seed=self.seed,
            entry_point=self.entry_point,
            device=self.device,
            gpus_per_model=self.gpus_per_model,
        )
        return {k: redact(str(v)) for k, v in flat.items()}


def parse_models(text: str, known: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """Parse ``"logistic:15,svm:10"`` into ``(("logistic", 15), ("svm", 10))``.

    A family without a count means one model. Raises MlfleetError for an unknown family,
    a count that is not a whole number of at least 1, or an empty composition.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise MlfleetError(f"models must name at least one family such as 'random_forest:5', but got models={text!r}")
    composition: dict[str, int] = {}
    for part in parts:
        name, _, count_text = part.partition(":")
        name = name.strip()
        if name not in known:
            raise MlfleetError(
                f"unknown model family {name!r} in models={text!r}; known families: {', '.join(known)}"
            )
        try:
            count = int(count_text) if count_text.strip() else 1
        except ValueError:
            raise MlfleetError(f"the count after {name!r} must be a whole number, but got {part!r} in models={text!r}") from None
        if count < 1:
            raise MlfleetError(f"the count of each family must be at least 1, but got {part!r} in models={text!r}")
        composition[name] = composition.get(name, 0) + count
    return tuple(composition.items())


def format_models(models: tuple[tuple[str, int], ...]) -> str:
    """The inverse of :func:`parse_models`."""
    return ",".join(f"{name}:{count}" for name, count in models)
