"""How a model is saved in MLflow: skops with explicit trusted types, pinned requirements, its input dataset.

Every pipeline mlfleet logs (a fleet's model, an ensemble's member or vote, analyze's votes)
goes through :func:`log_pipeline`. skops is the safe format (pickle runs code on load) and
loads only the types it is told to trust: those of our pipelines (:data:`TRUSTED_MODULES`),
found per model, never a blanket allowance. Requirements are pinned from what is installed
and only for what the model holds.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from mlfleet.errors import MlfleetError
from mlfleet.redaction import redact

#: module prefixes whose types a logged pipeline may hold (skops loads nothing else)
TRUSTED_MODULES = (
    "sklearn.",
    "xgboost.",
    "lightgbm.",
    "numpy.",
    "scipy.",
    "builtins.",
    "mlfleet.zoo._mlp.",
    "mlfleet.data._dates.",
)
#: single types outside those modules that a logged pipeline may hold (a LightGBM model's parameters)
TRUSTED_TYPES = ("collections.OrderedDict",)
#: our own estimators (the MLP) travel with the model, so it loads where mlfleet is not installed
OWN_CODE = str(Path(__file__).resolve().parents[1])
#: the pip package a logged model needs when it holds a type of these modules (beyond BASE_REQUIREMENTS)
PACKAGES_BY_MODULE = {"xgboost.": "xgboost", "lightgbm.": "lightgbm", "mlfleet.zoo._mlp.": "torch"}
BASE_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas", "scipy")
#: the package scikit-learn's estimator listing imports on its way through scikit-learn (skops lists the
#: estimators when it is imported) that holds no estimator and imports torch where torch is installed
TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


def skops_io():
    """``skops.io``, imported without torch: 0.2 GiB and a second less in every process that saves or loads a model.

    skops builds its list of trusted scikit-learn types with ``all_estimators()``, whose
    ``pkgutil.walk_packages`` imports every package on its way, scikit-learn's array-API shim
    for torch among them, and that imports torch. The walk ignores a package that cannot be
    imported, so the shim is held unimportable for the time of the import (the list comes out
    the same: the shim holds no estimator) and importable again after it.
    """
    if "skops.io" not in sys.modules and TORCH_SHIM not in sys.modules:
        sys.modules[TORCH_SHIM] = None  # an import of it raises ImportError, which the walk skips
        try:
            import skops.io  # noqa: F401
        finally:
            if TORCH_SHIM in sys.modules and sys.modules[TORCH_SHIM] is None:
                del sys.modules[TORCH_SHIM]
    import skops.io

    return skops.io


@dataclass(frozen=True)
class LoggedAs:
    """How a model is logged: its name in the experiment's Models view, its tags and params."""

    name: str
    tags: dict[str, str]
    params: dict[str, str]


def model_requirements(trusted: list[str]) -> tuple[str, ...]:
    """Pinned pip requirements of a pipeline holding the ``trusted`` types (see :func:`trusted_types`).

    Only what the model holds: a vote of forests needs no XGBoost or PyTorch. Passed
    explicitly, since inferring them costs seconds per model.
    """
    extra = sorted({pkg for t in trusted for prefix, pkg in PACKAGES_BY_MODULE.items() if t.startswith(prefix)})
    return tuple(f"{p}=={version(p)}" for p in (*BASE_REQUIREMENTS, *extra))


def log_pipeline(model: Any, input_example: Any, logged: LoggedAs, trusted: list[str], *, check_serving: bool = True):
    """Log ``model`` into the active run in skops format, trusting ``trusted``; returns MLflow's ``ModelInfo``.

    ``check_serving`` lets MLflow load the model back and predict the input example (a
    failure is only its warning): :func:`first_of_its_kind` decides it. Raises MlflowException
    when the save's own load check meets a type outside ``trusted``.
    """
    from mlflow.models import Model

    with ignore_integer_schema_hint(), compact_skops_schema():
        return Model.log(
            artifact_path=None,
            name=logged.name,
            flavor=_SklearnWithoutServingArgument,
            sk_model=model,
            input_example=input_example,
            pip_requirements=list(model_requirements(trusted)),
            serialization_format="skops",
            skops_trusted_types=trusted,
            code_paths=[OWN_CODE] if any(t.startswith("mlfleet.") for t in trusted) else None,
            tags=logged.tags,
            params=logged.params,
            validate_serving_input=check_serving,
        )


def first_of_its_kind(model: Any, input_example: Any) -> bool:
    """Whether this process has not yet logged a model of this kind (classes, input columns and dtypes).

    MLflow checks that a logged model serves its input example by loading it back, the largest
    part of logging a small model; a worker logs many pipelines of one kind, so it checks the
    first of each. The skops load that checks the trusted types runs for every model.
    """
    columns = getattr(input_example, "dtypes", None)
    schema = (
        tuple((str(c), str(t)) for c, t in columns.items()) if columns is not None else (type(input_example).__name__,)
    )
    kind = (_shape(model), schema)
    if kind in _SERVED:
        return False
    _SERVED.add(kind)
    return True


_SERVED: set[tuple] = set()


class _SklearnWithoutServingArgument:
    """``mlflow.sklearn`` as ``Model.log``'s flavor: the flavor's own ``log_model`` passes
    ``validate_serving_input`` on to ``save_model``, which refuses it."""

    __name__ = "mlflow.sklearn"

    @staticmethod
    def save_model(path, mlflow_model=None, validate_serving_input=True, **kwargs):  # noqa: ARG004
        import mlflow.sklearn

        mlflow.sklearn.save_model(path=path, mlflow_model=mlflow_model, **kwargs)


@contextmanager
def compact_skops_schema():
    """skops's ``schema.json`` without the indentation skops asks for (which Python's C JSON encoder cannot do).

    A process-wide swap of the ``json`` skops's saving sees, for the time of a save; loading
    reads either form the same.
    """
    skops_io()
    import skops.io._persist as persist

    original = persist.json
    persist.json = _CompactJson
    try:
        yield
    finally:
        persist.json = original


class _CompactJson:
    """The ``json`` module as skops's saving sees it under :func:`compact_skops_schema`."""

    loads = staticmethod(json.loads)
    load = staticmethod(json.load)

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        kwargs.pop("indent", None)
        return json.dumps(obj, **kwargs)


@contextmanager
def ignore_integer_schema_hint():
    """MLflow's hint that an inferred schema holds integer columns, filtered by its message.

    Integer columns are kept as integers on purpose: they are what ``pd.read_csv`` gives for
    a whole-number column without missing values (a column with missing values is a double).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Hint: Inferred schema contains integer column", category=UserWarning
        )
        yield


_TRUSTED_BY_SHAPE: dict[tuple, set[str]] = {}


def trusted_types(model: Any, *, cached: bool = False) -> list[str]:
    """The types skops must trust to load ``model``; refuses any outside :data:`TRUSTED_MODULES`
    and :data:`TRUSTED_TYPES`.

    Finding them means serialising the model (a second per large forest), so with ``cached``
    a process reuses what it found for pipelines of the same shape; every type in that list
    is one we trust anyway.
    """
    skops = skops_io()
    shape = _shape(model)
    if cached and shape in _TRUSTED_BY_SHAPE:
        return sorted(_TRUSTED_BY_SHAPE[shape])
    with compact_skops_schema():
        untrusted = skops.get_untrusted_types(data=skops.dumps(model))
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_MODULES) and t not in TRUSTED_TYPES]
    if foreign:
        raise MlfleetError(f"the pipeline holds types outside the trusted libraries: {', '.join(foreign)}")
    known = _TRUSTED_BY_SHAPE.setdefault(shape, set())
    known.update(untrusted)
    return sorted(known)


#: the most members of a vote whose classes all count in its shape (a forest's trees share one class)
SHAPE_MEMBERS = 32


def _shape(model: Any) -> tuple[str, ...]:
    """The classes of an estimator and of those nested in it: what decides the types skops meets."""
    names: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, str):  # "passthrough", "drop"
            names.append(obj)
            return
        names.append(f"{type(obj).__module__}.{type(obj).__qualname__}")
        for attr in ("steps", "transformers_"):
            for item in getattr(obj, attr, None) or ():
                walk(item[1])
        for attr in ("estimator_", "estimator"):  # a fitted wrapper, a FrozenEstimator
            nested = getattr(obj, attr, None)
            if nested is not None and not isinstance(nested, type):
                walk(nested)
        members = getattr(obj, "estimators_", None)
        if isinstance(members, list) and members:
            for member in members if len(members) <= SHAPE_MEMBERS else members[:1]:
                walk(member)

    walk(model)
    return tuple(names)


def dataset_entity(X, y, *, name: str, source: str, digest: str, target: str):
    """The MLflow dataset entity of a command's data, built once by the driver."""
    import mlflow.data

    frame = X.assign(**{target: y})  # copy-on-write: the rows are not copied
    with ignore_integer_schema_hint():  # the schema is inferred here and in the entity
        dataset = mlflow.data.from_pandas(
            frame, source=redact(source) if "://" in source else None, name=name, targets=target, digest=digest
        )
        try:  # a cached property: MLflow's own inference reads every cell in Python (74 s on a million rows)
            dataset.__dict__["schema"] = table_schema(frame)
        except Exception:  # noqa: BLE001 (MLflow's own gives no schema where it cannot infer one)
            dataset.__dict__["schema"] = None
        return dataset._to_mlflow_entity()


#: the rows a dataset's column types are inferred from (and each column's first value that is there)
SCHEMA_ROWS = 10_000


def table_schema(frame):
    """The MLflow schema of ``frame``, as ``mlflow.data.from_pandas`` infers it, in a second at any size.

    The column types come from the first :data:`SCHEMA_ROWS` rows and the first present value of
    each column; whether a column is required (has no missing value) from every row, vectorised.
    """
    import pandas as pd
    from mlflow.models import infer_signature
    from mlflow.types.schema import ColSpec, Schema

    rows = frame.iloc[:SCHEMA_ROWS]
    later = {frame[c].first_valid_index() for c in frame.columns} - {None} - set(rows.index)
    if later:
        rows = pd.concat([rows, frame.loc[sorted(later)]])
    specs = infer_signature(rows).inputs.inputs  # a column each, in the frame's order
    missing = frame.isna().any().to_numpy()
    return Schema([ColSpec(spec.type, spec.name, required=not gap) for spec, gap in zip(specs, missing, strict=True)])


def load(model_uri: str, tracking_uri: str = "") -> Any:
    """A logged pipeline as scikit-learn loads it (the label decoder around the pipeline, or the vote).

    ``tracking_uri``: the store a ``models:/`` or ``runs:/`` URI is resolved in (a Ray worker's process
    has none of its own); by default the one in force.
    """
    import mlflow.sklearn

    skops_io()  # before MLflow imports it
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    return mlflow.sklearn.load_model(model_uri)


def trusted_of(model_uri: str) -> list[str]:
    """The types a logged model was saved trusting (its MLmodel says): what a vote of logged models needs."""
    from mlflow.models import Model

    return list(Model.load(model_uri).flavors.get("sklearn", {}).get("skops_trusted_types") or [])
