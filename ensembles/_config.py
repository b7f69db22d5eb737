"""The ensemble command's frozen configuration: what its command line turns into."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mlfleet.config import DataConfig

DEFAULT_ENSEMBLE_RESULTS = "lakehouse/ensemble_results"
DEFAULT_PARTITIONS = 4
DEFAULT_FAMILY = "random_forest"
#: how members' votes are weighted: equally, or by each member's score on the validation split
WEIGHTS = ("equal", "validation")


@dataclass(frozen=True)
class EnsembleConfig:
    """One partition ensemble: the data, how it is sharded, the members' family, where results go.

    ``partition_by`` (a feature column) replaces ``partitions``: one shard per value of the
    column. ``n_trials`` 0 fits the family's default parameters; above 0 each member (and the
    single all-data model) runs its own Optuna study on its own rows.
    """

    data: DataConfig = field(default_factory=DataConfig)
    partitions: int = DEFAULT_PARTITIONS
    partition_by: str = ""
    model: str = DEFAULT_FAMILY
    n_trials: int = 0
    weights: str = "equal"
    register: str = ""
    metric: str = ""
    results: str = DEFAULT_ENSEMBLE_RESULTS
    address: str = ""
    experiment: str = ""
    entry_point: str = "ensemble"
    seed: int = 42

    def params(self) -> dict[str, str]:
        """The parameters as the strings MLflow stores (the MLproject parameter names)."""
        flat = {k: v for k, v in asdict(self.data).items() if k != "seed"}
        flat["data"] = flat.pop("source")
        flat.update(
            partitions=self.partitions,
            partition_by=self.partition_by,
            model=self.model,
            n_trials=self.n_trials,
            weights=self.weights,
            register=self.register,
            metric=self.metric,
            results=self.results,
            seed=self.seed,
            entry_point=self.entry_point,
        )
        return {k: str(v) for k, v in flat.items()}
