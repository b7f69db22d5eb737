"""One model's study: the defaults first, early stopping fixing the refit, the best trial's validation
predictions, scores of what is served, and the new families logged and loaded back."""

import dataclasses
import functools
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io
from helpers import GROWN, open_parent
from sklearn.datasets import make_classification
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from mlfleet.config import DataConfig
from mlfleet.data import load_dataset, split_dataset
from mlfleet.metrics import predict_with_proba, resolve_metric
from mlfleet.stores import model_format
from mlfleet.training.jobs import ModelJob
from mlfleet.training.tuning import REFIT_PARAMS, balanced, fit_front, refit, tune, tune_and_fit
from mlfleet.zoo import FAMILIES, family
from mlfleet.zoo import _boosting as sklearn_boosting
from mlfleet.zoo._registry import MAX_ROUNDS

TASKS = ("classification", "regression")
NEW_FAMILIES = ("lightgbm", "hist_gradient_boosting", "extra_trees")
#: the parameter early stopping sets, and the most rounds a trial may grow, per boosted family
ROUNDS = {
    "xgboost": ("n_estimators", MAX_ROUNDS),
    "lightgbm": ("n_estimators", MAX_ROUNDS),
    "hist_gradient_boosting": ("max_iter", MAX_ROUNDS),
    "gradient_boosting": ("n_estimators", sklearn_boosting.MAX_ROUNDS),
}


@pytest.fixture(autouse=True)
def one_thread():
    """One thread per model, as a worker holding one core gives it."""
    with threadpool_limits(limits=1):
        yield


@functools.cache
def split_of(source: str):
    return split_dataset(load_dataset(DataConfig(source=source)), seed=0)


def split_for(task: str):
    return split_of("wine" if task == "classification" else "diabetes")


def job(name: str) -> ModelJob:
    return ModelJob(0, name, "all", 1, 0.0, 0, 1.0)


def metric_of(split):
    return resolve_metric("", split.task)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_first_trial_is_the_familys_defaults(name, task):
    fam, split = family(name), split_for(task)
    study = tune(job(name), split, metric_of(split), 1)
    assert study.trials[0].params == fam.defaults(task)
    if fam.fit_early:
        found = study.trials[0].user_attrs[REFIT_PARAMS]
        assert found and set(found) <= set(fam.build(task, {}, 0, 1).get_params())


@pytest.mark.parametrize("name", ["svm", "lightgbm"])
def test_one_trial_trains_the_default_model(name):
    split = split_for("classification")
    tuned = tune_and_fit(job(name), split, metric_of(split), 1)
    defaults = family(name).defaults("classification")
    assert {k: tuned.best_params[k] for k in defaults} == defaults
    assert set(tuned.best_params) - set(defaults) <= {"n_estimators"}  # what early stopping found
    fitted = tuned.pipeline.named_steps["model"].get_params()
    assert {k: fitted[k] for k in defaults} == defaults


@pytest.mark.parametrize("name", ["logistic", "lightgbm", "xgboost"])
def test_a_study_that_tunes_class_weights_starts_without_them(name, tmp_path):
    X, y = make_classification(300, 6, n_informative=4, weights=[0.92], random_state=0)
    pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]).assign(target=y).to_csv(tmp_path / "rare.csv", index=False)
    split = split_dataset(load_dataset(DataConfig(source=str(tmp_path / "rare.csv"))), seed=0)
    assert split.plan.imbalanced
    study = tune(job(name), split, metric_of(split), 2)
    assert study.trials[0].params == {**family(name).defaults("classification"), "class_weight": "none"}


@pytest.mark.parametrize("name", list(ROUNDS))
def test_early_stopping_decides_the_rounds_the_refit_grows(name):
    """A trial stops on the validation rows; the refit grows exactly the rounds kept, and they are a parameter."""
    split = split_of("breast_cancer")
    tuned = tune_and_fit(job(name), split, metric_of(split), 2)
    key, most = ROUNDS[name]
    rounds = tuned.best_params[key]
    assert isinstance(rounds, int) and 1 <= rounds < most
    model = tuned.pipeline.named_steps["model"]
    assert model.get_params()[key] == rounds and GROWN[name](model) == rounds


def fit_on_training_rows(name: str, split, params: dict):
    """The best parameters fitted on the training rows alone, and the validation rows as it sees them."""
    fam = family(name)
    Xt_train, Xt_val = fit_front(job(name), split, 1)
    model = fam.build(split.task, balanced(fam, params, split), 0, 1).fit(Xt_train, split.y_train)
    return model, Xt_val


@pytest.mark.parametrize(("name", "task"), [("random_forest", "classification"), ("extra_trees", "regression")])
def test_validation_predictions_are_the_best_trials_fit_on_the_training_rows(name, task):
    split = split_for(task)
    tuned = tune_and_fit(job(name), split, metric_of(split), 3)
    model, Xt_val = fit_on_training_rows(name, split, tuned.best_params)
    served = tuned.pipeline.predict_proba if task == "classification" else tuned.pipeline.predict
    if task == "classification":
        assert tuned.val_predictions.shape == (len(split.y_val), split.n_classes)
        assert np.allclose(tuned.val_predictions.sum(axis=1), 1, atol=1e-5)
        assert np.allclose(tuned.val_predictions, model.predict_proba(Xt_val), atol=1e-6)
    else:
        assert tuned.val_predictions.shape == (len(split.y_val),)
        assert np.allclose(tuned.val_predictions, model.predict(Xt_val), rtol=1e-6)
    assert tuned.val_predictions.dtype == np.float32
    assert not np.allclose(tuned.val_predictions, served(split.X_val), atol=1e-3)  # not the refit's


def test_validation_predictions_of_an_early_stopped_trial_are_its_best_rounds():
    split = split_for("classification")
    tuned = tune_and_fit(job("xgboost"), split, metric_of(split), 1)
    model, Xt_val = fit_on_training_rows("xgboost", split, tuned.best_params)
    assert np.allclose(tuned.val_predictions, model.predict_proba(Xt_val), atol=1e-6)


def test_classification_predictions_are_the_argmax_of_probabilities():
    X, y = make_classification(200, 5, n_informative=3, n_classes=3, random_state=1)
    labels = np.array(["ant", "bee", "cat"])[y]
    model = SVC(probability=True, random_state=0).fit(X, labels)
    pred, proba = predict_with_proba(model, X, "classification")
    assert np.array_equal(pred, model.classes_[proba.argmax(axis=1)]) and set(pred) <= set(labels)
    pred, proba = predict_with_proba(SVC().fit(X, labels), X, "classification")  # no probabilities
    assert proba is None and pred.shape == (200,)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", NEW_FAMILIES)
def test_a_new_familys_pipeline_survives_skops_with_its_trusted_types(name, task):
    split = split_for(task)
    pipeline = tune_and_fit(job(name), split, metric_of(split), 1).pipeline
    trusted = model_format.trusted_types(pipeline)
    again = skops.io.loads(skops.io.dumps(pipeline), trusted=trusted)
    assert np.array_equal(again.predict(split.X_test), pipeline.predict(split.X_test))


def recording_fits(monkeypatch, name: str) -> list:
    """The dtype of every feature matrix the family's estimators are fitted on, from here on."""
    fam, seen = family(name), []

    def build(*args):
        model = fam.build(*args)
        fit = model.fit

        def recorded(X, *rest, **kwargs):
            seen.append(X.dtype)
            return fit(X, *rest, **kwargs)

        model.fit = recorded
        return model

    monkeypatch.setitem(FAMILIES, name, dataclasses.replace(fam, build=build))
    return seen


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_float32_features_reach_the_families_that_take_them_and_predictions_keep_their_kind(name, task, monkeypatch):
    """Trees, boosters, the MLP, logistic regression and naive Bayes (classification) train on float32
    features; the others on float64 as before; either way predictions are what they were in kind."""
    fam, split = family(name), split_for(task)
    seen = recording_fits(monkeypatch, name)
    tuned = tune_and_fit(job(name), split, metric_of(split), 2)
    expected = np.dtype(np.float32 if task in fam.float32 else np.float64)
    assert seen and set(seen) == {expected}, seen  # every trial and the refit
    assert tuned.pipeline[:-1].transform(split.X_test).dtype == expected
    monkeypatch.setitem(FAMILIES, name, dataclasses.replace(fam, float32=()))
    wide = tune_and_fit(job(name), split, metric_of(split), 2).pipeline
    narrow, before = tuned.pipeline.predict(split.X_test), wide.predict(split.X_test)
    assert narrow.dtype == before.dtype and narrow.shape == before.shape
    if task == "classification":
        assert set(narrow) <= set(range(split.n_classes))
        assert np.mean(narrow == before) > 0.85  # the same model, up to float32's rounding
    if name in ("random_forest", "extra_trees", "gradient_boosting", "xgboost"):
        assert np.array_equal(narrow, before)  # they split on float32 anyway: the very same trees


def test_a_float32_pipeline_survives_skops_and_serves_what_was_scored():
    split = split_for("classification")
    tuned = tune_and_fit(job("random_forest"), split, metric_of(split), 1)
    assert tuned.pipeline[:-1].transform(split.X_test).dtype == np.float32
    trusted = model_format.trusted_types(tuned.pipeline)
    assert not [t for t in trusted if t.startswith("mlfleet.")]  # no code of ours to trust for the cast
    sweep = open_parent(params={"models": "random_forest:1"})
    child = sweep.model.start("000-random_forest-all", {})
    uri = sweep.model.finish(
        child,
        params=tuned.best_params,
        metrics=tuned.test_metrics,
        history={"val_f1": tuned.trial_scores},
        tags={},
        model=tuned.pipeline,
        input_example=split.X_test.head(2),
    )
    served = mlflow.pyfunc.load_model(uri).predict(split.X_test)
    pred, _ = predict_with_proba(tuned.pipeline, split.X_test, "classification")
    assert np.array_equal(np.asarray(served), pred)
    sweep.close(metrics={}, failed=False)


@pytest.mark.parametrize("name", ["xgboost", "logistic"])
def test_the_trials_features_are_freed_before_the_refit_which_reads_the_split_as_it_is(name, monkeypatch):
    """A big table's peak memory: the refit neither holds the trials' features nor concatenates train and
    validation rows (it fits on ``split.X_fit``, the one frame they are views of)."""
    import weakref

    from mlfleet.training import tuning

    split, made, fitted_on = split_for("classification"), [], []
    front, fit, refit_of = tuning.fit_front, tuning.fit_pipeline, tuning.refit

    def kept_front(*args):
        features = front(*args)
        made.extend(weakref.ref(part) for part in features)
        return features

    def checked_refit(*args, **kwargs):
        assert made and all(ref() is None for ref in made), "the trials' features outlive the study"
        return refit_of(*args, **kwargs)

    def recorded_fit(pipeline, X, y):
        fitted_on.append(X)
        return fit(pipeline, X, y)

    monkeypatch.setattr(tuning, "fit_front", kept_front)
    monkeypatch.setattr(tuning, "refit", checked_refit)
    monkeypatch.setattr(tuning, "fit_pipeline", recorded_fit)
    tuning.tune_and_fit(job(name), split, metric_of(split), 2)
    assert fitted_on and fitted_on[-1] is split.X_fit


def test_a_lightgbm_model_logs_pinned_and_loads_back():
    split = split_for("classification")
    tuned = tune_and_fit(job("lightgbm"), split, metric_of(split), 1)
    trusted = model_format.trusted_types(tuned.pipeline)
    assert any(r.startswith("lightgbm==") for r in model_format.model_requirements(trusted))
    sweep = open_parent(params={"models": "lightgbm:1"})
    child = sweep.model.start("000-lightgbm-all", {})
    uri = sweep.model.finish(
        child,
        params=tuned.best_params,
        metrics=tuned.test_metrics,
        history={"val_f1": tuned.trial_scores},
        tags={},
        model=tuned.pipeline,
        input_example=split.X_test.head(2),
    )
    assert mlflow.MlflowClient().get_run(child).data.params["n_estimators"] == str(tuned.best_params["n_estimators"])
    loaded = mlflow.pyfunc.load_model(uri)
    assert np.array_equal(loaded.predict(split.X_test), tuned.pipeline.predict(split.X_test))
    pinned = (Path(mlflow.artifacts.download_artifacts(uri)) / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("lightgbm==") for line in pinned)
    sweep.close(metrics={}, failed=False)


def test_a_study_goes_on_from_where_it_stopped_and_a_deadline_starts_no_trial():
    """A time budget's rounds: more trials continue the study (the defaults stay its first trial, the best
    trial's validation predictions stand until a better one), and no trial starts past the deadline but
    a study's defaults, which may start until the budget's end."""
    import time

    split, name = split_for("classification"), "logistic"
    first = tune(job(name), split, metric_of(split), 1)
    assert len(first.trials) == 1 and first.val_predictions is not None
    more = tune(job(name), split, metric_of(split), 3, previous=first)
    assert len(more.trials) == 4 and more.trials[0].params == first.trials[0].params
    assert more.best_value >= first.best_value and more.tuning_s > first.tuning_s
    assert len({str(t.params) for t in more.trials}) > 1  # the next round draws new points
    if more.best.number == 0:
        assert np.array_equal(more.val_predictions, first.val_predictions)
    late = tune(job(name), split, metric_of(split), 5, previous=more, deadline=time.time() - 1)
    assert len(late.trials) == len(more.trials)  # past the deadline: no trial started
    # a first round that Ray started past the tuning deadline still fits the defaults until the budget's end
    now = time.time()
    started_late = tune(job(name), split, metric_of(split), 5, deadline=now - 1, first_by=now + 60)
    assert len(started_late.trials) == 1 and started_late.best is not None
    assert started_late.trials[0].params == first.trials[0].params  # the defaults, nothing else
    assert tune(job(name), split, metric_of(split), 5, deadline=now - 1, first_by=now - 1).trials == ()
    assert tune(job(name), split, metric_of(split), 5, deadline=now - 1).trials == ()
    tuned = refit(job(name), split, metric_of(split), more)
    assert tuned.best_val_score == more.best_value and len(tuned.trial_scores) == 4


def test_a_variance_threshold_fitted_a_column_at_a_time_is_the_one_scikit_learn_fits():
    """The variance threshold is fitted from the float32 features as they are (a big table's peak memory):
    the variances, the features kept and the predictions are those of scikit-learn's own fit."""
    from sklearn.base import clone
    from sklearn.feature_selection import VarianceThreshold

    from mlfleet.data._dataset import dataset_of
    from mlfleet.training.tuning import _fit_variance_threshold, build_pipeline, fit_pipeline

    rng = np.random.default_rng(0)
    kind = rng.choice(["a", "b", "rare"], 3000, p=[0.6, 0.37, 0.03])
    frame = pd.DataFrame({"x": rng.normal(size=3000), "z": rng.normal(size=3000), "kind": kind})
    frame["target"] = ((frame["x"] > 0) ^ (frame["kind"] == "b")).astype(int)
    split = split_dataset(dataset_of(frame, DataConfig(source="frame"), "target"))
    pipeline = build_pipeline(ModelJob(0, "naive_bayes", "variance", 1, 0.0, 0, 1.0), split, {}, 1)
    ours = fit_pipeline(clone(pipeline), split.X_fit, split.y_fit)
    theirs = clone(pipeline).fit(split.X_fit, split.y_fit)
    kept, selected = ours.named_steps["select"], theirs.named_steps["select"]
    assert ours.named_steps["prep"].transform(split.X_test).dtype == np.float32
    np.testing.assert_allclose(kept.variances_, selected.variances_, rtol=1e-5)
    assert list(kept.get_support()) == list(selected.get_support()) and not kept.get_support().all()  # "rare" goes
    assert np.array_equal(ours.predict(split.X_test), theirs.predict(split.X_test))
    flat = np.ones((50, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="No feature in X meets the variance threshold 0.05000"):
        VarianceThreshold(0.05).fit(flat)
    with pytest.raises(ValueError, match="No feature in X meets the variance threshold 0.05000"):
        _fit_variance_threshold(VarianceThreshold(0.05), flat)


def test_skops_is_imported_without_torch_and_trusts_the_same_types():
    """Every process that logs or loads a model imports skops; through ``skops_io`` it does not import
    torch (0.2 GiB of every Ray worker), its list of trusted scikit-learn types is the same, and the
    shim it skips imports again afterwards."""
    import json
    import subprocess
    import sys

    def trusted_list(imported: str) -> dict:
        code = (
            f"import json, sys; {imported}; import skops.io._trusted_types as t; torch = 'torch' in sys.modules; "
            "import sklearn.externals.array_api_compat.torch; "
            "print(json.dumps({'torch': torch, 'types': sorted(t.SKLEARN_ESTIMATOR_TYPE_NAMES)}))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        return json.loads(out.splitlines()[-1])

    ours = trusted_list("from mlfleet.stores.model_format import skops_io; skops_io()")
    plain = trusted_list("import skops.io")
    assert not ours["torch"] and plain["torch"]
    assert ours["types"] == plain["types"] and len(ours["types"]) > 100
