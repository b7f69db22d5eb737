"""A sweep's jobs: which model, with which strategy, seed and resources. Pure and deterministic."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlfleet.data import STRATEGIES
from mlfleet.zoo import Family, family

#: a tree ensemble is given a core per this many training rows x trees, up to its family's cores
ROW_TREES_PER_CORE = 2_000_000


@dataclass(frozen=True)
class ModelJob:
    """One model of the fleet; the same config always expands to the same jobs."""

    model_id: int
    family: str
    feature_strategy: str
    cpus: int
    gpus: float
    seed: int
    cost: float
    variant: int = 0  # the model's index within its family (picks an MLP architecture)
    attempt: int = 1  # the generation of its row: above 1 when a resumed sweep trains it again

    @property
    def run_name(self) -> str:
        return f"{self.model_id:03d}-{self.family}-{self.feature_strategy}"


def expand_jobs(
    models: tuple[tuple[str, int], ...],
    *,
    first_id: int,
    seed: int,
    max_cpus: int,
    max_gpus: float = 0.0,
    gpus_per_model: float | None = None,
    rows: int | None = None,
    strategies: tuple[str, ...] | None = None,
) -> tuple[ModelJob, ...]:
    """Expand ``(("svm", 10), ...)`` into jobs with ids from ``first_id`` upwards.

    Feature strategies go round ``strategies`` (default: the seven) in id order, so every family
    meets several (the portfolio's models all use ``all``, every feature). A
    family's resources are capped to ``max_cpus``/``max_gpus`` (the largest node), so
    that no job waits for a node that does not exist; ``gpus_per_model`` replaces what GPU
    families ask for (fractions pack several models on one GPU; 0 trains them on CPUs).
    ``rows``, the rows a model is fitted on, sizes the cores of tree ensembles (:func:`cores_for`).
    """
    jobs = []
    position = 0
    for name, count in models:
        fam = family(name)
        cpus = cores_for(fam, rows, max_cpus)
        wanted = fam.gpus if gpus_per_model is None or not fam.gpus else gpus_per_model
        gpus = min(wanted, max_gpus) if wanted else 0.0
        for index in range(count):
            model_id = first_id + position
            jobs.append(
                ModelJob(
                    model_id=model_id,
                    family=name,
                    feature_strategy=(strategies or STRATEGIES)[position % len(strategies or STRATEGIES)],
                    cpus=cpus,
                    gpus=gpus,
                    seed=seed + model_id,
                    cost=fam.cost,
                    variant=index,
                )
            )
            position += 1
    return tuple(jobs)


def cores_for(fam: Family, rows: int | None, max_cpus: int) -> int:
    """The CPUs a model of ``fam`` asks for: one core per :data:`ROW_TREES_PER_CORE` of its
    ``rows`` x its search's most trees, between 1 and the family's cores, capped to ``max_cpus``.

    A forest on a few thousand rows spends as long in joblib's hand-offs as in its trees: on
    2,400 rows it used 1.4 of the 2 cores it held, and the third core-second in ten idled. With
    one core it keeps it busy and the fleet packs another model beside it. Without ``rows``
    (not known), or for a family that is not a tree ensemble, the family's own cores.
    """
    cpus = max(1, min(fam.cpus, max_cpus))
    if rows is None or not fam.trees:
        return cpus
    return max(1, min(cpus, math.ceil(rows * fam.trees / ROW_TREES_PER_CORE)))


def longest_first(jobs: tuple[ModelJob, ...]) -> list[ModelJob]:
    """Submission order: the most expected work first (ties by id), so the tail is short."""
    return sorted(jobs, key=lambda j: (-j.cost, j.model_id))
