"""One contract for every family of the zoo, on both tasks."""

import pickle
import warnings

import numpy as np
import optuna
import pytest
from helpers import GROWN
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from threadpoolctl import threadpool_limits

from mlfleet.errors import MlfleetError
from mlfleet.stores.model_format import trusted_types
from mlfleet.zoo import FAMILIES, MULTI_CORE, cpu_families, family

TASKS = ("classification", "regression")
#: what a logged model of the zoo may ask skops to trust: these modules, and these exact types
TRUSTED = ("sklearn.", "xgboost.", "lightgbm.", "numpy.", "scipy.", "builtins.", "mlfleet.zoo._mlp.")
TRUSTED_EXACTLY = ("collections.OrderedDict",)
#: multi-core families without ``n_jobs``: OpenMP threads, bounded by the worker's threadpoolctl limit
OPENMP_THREADS = ("hist_gradient_boosting",)


@pytest.fixture(autouse=True)
def one_thread():
    """One thread per model, as a worker holding one core gives it (OpenMP would take every core)."""
    with threadpool_limits(limits=1):
        yield


def tiny(task):
    X, y = (load_iris if task == "classification" else load_diabetes)(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(y), 90, replace=False)
    return X[idx], y[idx]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_contract(name, task):
    fam = family(name)
    X, y = tiny(task)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = fam.space(trial, task)
    assert params, "a family must have something to tune"
    model = fam.build(task, params, 0, 1)
    assert clone(model).get_params() == model.get_params()
    model.fit(X, y)
    pred = model.predict(X)
    assert pred.shape == (len(y),)
    if task == "classification":
        assert set(np.unique(pred)) <= set(np.unique(y))
        proba = model.predict_proba(X)
        assert proba.shape == (len(y), 3) and np.allclose(proba.sum(axis=1), 1)
    else:
        assert np.isfinite(pred).all()
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.predict(X), pred)
    assert fam.cpus in (1, MULTI_CORE) and fam.gpus in (0, 1) and fam.cost > 0
    assert (fam.device == "gpu") == (fam.gpus > 0)
    assert fam.model_type(task) == type(model).__name__
    assert all(t.startswith(TRUSTED) or t in TRUSTED_EXACTLY for t in trusted_types(model))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_multi_core_families_use_the_cores_they_are_given(name):
    fam = family(name)
    model = fam.build("classification", {}, 0, 2)
    if fam.device == "gpu":
        assert model.get_params()["n_threads"] == 2  # torch threads on CPU
    elif name in OPENMP_THREADS:
        assert fam.cpus == MULTI_CORE and "n_jobs" not in model.get_params()
    elif fam.cpus == MULTI_CORE:
        assert model.get_params()["n_jobs"] == 2
    else:
        assert "n_jobs" not in model.get_params() or model.get_params()["n_jobs"] in (None, 1)


def test_same_seed_same_model():
    X, y = tiny("classification")
    a = family("random_forest").build("classification", {"n_estimators": 20}, 7, 1).fit(X, y)
    b = family("random_forest").build("classification", {"n_estimators": 20}, 7, 1).fit(X, y)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_regression_stand_ins_are_documented():
    assert family("naive_bayes").model_type("regression") == "BayesianRidge"
    assert family("logistic").model_type("regression") == "ElasticNet"
    assert all(f.regression_note for f in FAMILIES.values())


def test_unknown_family():
    known = "logistic, svm, random_forest, xgboost, gradient_boosting, naive_bayes, lightgbm, "
    with pytest.raises(MlfleetError, match=rf"unknown model family 'catboost'; known: {known}"):
        family("catboost")


def test_new_families_come_after_the_default_fleets_six():
    assert cpu_families()[:6] == ("logistic", "svm", "random_forest", "xgboost", "gradient_boosting", "naive_bayes")
    assert cpu_families()[6:] == ("lightgbm", "hist_gradient_boosting", "extra_trees")


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_defaults_are_a_point_of_the_search_space(name, task):
    """Enqueued, the defaults are exactly what the space draws: its names, values inside its ranges."""
    fam = family(name)
    defaults = fam.defaults(task)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(defaults)
    trial = study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns of a fixed value outside its distribution
        assert fam.space(trial, task) == defaults == trial.params


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.fit_early])
def test_early_stopping_returns_what_makes_the_refit_grow_the_rounds_kept(name, task):
    fam = family(name)
    X, y = tiny(task)
    params = {**fam.fixed_params(0), **fam.defaults(task)}
    model = fam.build(task, params, 0, 1)
    found = fam.fit_early(model, X[:60], y[:60], X[60:], y[60:])
    assert found and all(isinstance(v, int) for v in found.values())
    refit = fam.build(task, {**params, **found}, 0, 1).fit(X, y)  # no validation rows: no stopping
    assert {k: refit.get_params()[k] for k in found} == found
    assert GROWN[name](refit) == next(iter(found.values()))


def test_gradient_boosting_with_a_class_too_rare_to_hold_out_fits_its_own_rounds():
    fam = family("gradient_boosting")
    X, y = tiny("classification")
    y = np.where(np.arange(len(y)) == 0, 3, y)  # class 3 has one row
    model = fam.build("classification", fam.defaults("classification"), 0, 1)
    assert fam.fit_early(model, X, y, X, y) == {"n_estimators": 100}


def test_mlp_architectures_differ_and_early_stopping_records_the_epoch():
    from mlfleet.zoo._mlp import ARCHITECTURES

    fam = family("mlp")
    assert len({str(fam.fixed_params(i)) for i in range(10)}) == len(ARCHITECTURES) == 10
    X, y = tiny("classification")
    model = fam.build("classification", {**fam.fixed_params(4), "epochs": 200, "patience": 3}, 0, 1)
    model.fit(X[:60], y[:60], eval_set=(X[60:], y[60:]))
    assert 1 <= model.best_epoch_ < 200 and model.device_ == "cpu"


def test_mlp_on_cpu_repeats_with_the_same_seed():
    X, y = tiny("regression")
    fam = family("mlp")
    a = fam.build("regression", {**fam.fixed_params(2), "epochs": 5}, 3, 1).fit(X, y).predict(X)
    b = fam.build("regression", {**fam.fixed_params(2), "epochs": 5}, 3, 1).fit(X, y).predict(X)
    assert np.array_equal(a, b)
