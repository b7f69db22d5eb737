"""Ensemble selection: the greedy path on handmade cases, the stopping rule, the served vote's score, bad inputs."""

import warnings

import numpy as np
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlfleet.errors import MlfleetError
from mlfleet.metrics import METRICS, score_one
from mlfleet.training.selection import _BATCH_SCORERS, Selection, _one_by_one, select_ensemble
from mlfleet.training.voting import build_vote

pytestmark = pytest.mark.unit

#: binary labels of the handmade cases; a margin is a model's confidence in the right class, minus 0.5
Y = np.array([1, 0, 1, 0, 1, 0])


def binary(margins, y=Y):
    """Two-class probabilities whose right class gets 0.5 + margin on each row (negative: wrong)."""
    p1 = np.where(y == 1, 0.5 + np.asarray(margins), 0.5 - np.asarray(margins))
    return np.column_stack([1 - p1, p1])


def select(predictions, metric="accuracy", y=Y, **kwargs):
    task = METRICS[metric].task
    return select_ensemble(predictions, y, METRICS[metric], task=task, **kwargs)


# --- the greedy path ----------------------------------------------------------------------


def test_the_best_single_then_a_second_model_twice():
    # A is right on rows 1-3 and 6 (4/6), B on rows 4-6 (3/6), C on none. Half A, half B gets
    # row 4 (-0.1 + 0.15) but not row 5 (-0.2 + 0.15): 5/6. One A to two B gets row 5 as well,
    # and keeps rows 1-3 (0.4 - 2 x 0.1 > 0): 6/6, which nothing beats.
    a = binary([0.4, 0.4, 0.4, -0.1, -0.2, 0.1])
    b = binary([-0.1, -0.1, -0.1, 0.15, 0.15, 0.1])
    c = binary([-0.45] * 6)
    selection = select([a, b, c])
    assert selection.picks == (0, 1, 1)
    assert selection.weights == pytest.approx((1 / 3, 2 / 3, 0.0), abs=1e-15)
    assert selection.score == 1.0
    assert selection.best_single == (0, pytest.approx(4 / 6))
    assert selection.trajectory[:3] == pytest.approx((4 / 6, 5 / 6, 1.0))
    assert selection.members == (0, 1)
    assert selection.for_vote() == ((0, 1), selection.weights[:2])


def test_selection_stops_after_patience_idle_rounds_and_keeps_the_best_prefix():
    a = binary([0.4, 0.4, 0.4, -0.1, -0.2, 0.1])
    b = binary([-0.1, -0.1, -0.1, 0.15, 0.15, 0.1])
    for patience in (1, 2, 5):
        selection = select([a, b], patience=patience)
        assert len(selection.trajectory) == 3 + patience  # the best at round 3, then the idle rounds
        assert selection.picks == (0, 1, 1)  # the idle rounds' picks are cut
    assert len(select([a, b], max_rounds=2).trajectory) == 2


def test_patience_finds_a_better_mix_after_an_idle_round():
    # A alone is right on 4/5 rows; half A, half B only on 3/5; two A to one B on all five. The
    # second round can only repeat A (idle, still 4/5); the third then adds B.
    y = Y[:5]
    a = binary([0.1, -0.1, 0.3, 0.3, 0.1], y)
    b = binary([-0.15, 0.3, -0.2, -0.2, -0.15], y)
    c = binary([-0.45] * 5, y)
    assert select([a, b, c], y=y, patience=1).picks == (0,)
    patient = select([a, b, c], y=y, patience=2)
    assert patient.picks == (0, 0, 1)
    assert patient.weights == pytest.approx((2 / 3, 1 / 3, 0.0), abs=1e-15)
    assert (patient.score, patient.best_single.score) == (1.0, 0.8)


@pytest.mark.parametrize("metric", ["accuracy", "f1", "log_loss", "roc_auc"])
def test_two_complementary_models_beat_both(metric):
    # each is confident where it is right and unsure where it is wrong, on different rows
    first = binary([0.4, 0.4, 0.4, -0.1, -0.1, -0.1])
    second = binary([-0.1, -0.1, -0.1, 0.4, 0.4, 0.4])
    selection = select([first, second], metric)
    assert all(w > 0 for w in selection.weights)
    singles = [score_one(METRICS[metric], Y, p.argmax(axis=1), p) for p in (first, second)]
    assert all(METRICS[metric].better(selection.score, s) for s in singles)


@pytest.mark.parametrize("metric", ["accuracy", "f1", "log_loss", "roc_auc"])
def test_one_strong_model_among_garbage_is_the_ensemble(metric):
    y = np.array([0, 1, 2, 0, 1, 2])
    strong = np.full((6, 3), 0.15)
    strong[np.arange(6), y] = 0.7
    wrong = np.roll(strong, 1, axis=1)  # as sure of the next class
    noise = np.random.default_rng(0).dirichlet([1, 1, 1], 6)
    selection = select([wrong, strong, noise], metric, y=y)
    assert selection.weights == (0.0, 1.0, 0.0)
    assert selection.picks == (1,)
    assert selection.best_single == (1, selection.score)


@pytest.mark.parametrize("metric", ["rmse", "mae", "r2"])
def test_regression_picks_in_the_metrics_direction(metric):
    # A is off by +0.5, B by -1, C by +2: A, then B (off by -0.25), then A again (off by 0)
    y = np.array([1.0, 2.0, 3.0, 4.0])
    selection = select([y + 0.5, y - 1, y + 2], metric, y=y)
    assert selection.picks == (0, 1, 0)
    assert selection.weights == pytest.approx((2 / 3, 1 / 3, 0.0), abs=1e-15)
    assert selection.score == pytest.approx(1.0 if metric == "r2" else 0.0, abs=1e-12)
    assert selection.best_single.index == 0


def test_ties_go_to_the_lowest_index():
    a = binary([0.2] * 6)
    selection = select([binary([-0.2] * 6), a, a.copy(), a.copy()])
    assert selection.picks == (1,)
    assert isinstance(selection, Selection)


# --- what a served vote scores ------------------------------------------------------------


def on(columns, estimator):
    return make_pipeline(make_column_transformer(("passthrough", columns)), estimator)


@pytest.mark.parametrize("metric", ["accuracy", "f1", "log_loss", "roc_auc"])
def test_score_is_what_the_weighted_vote_scores(metric):
    X, y = load_iris(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    models = [
        ("sepals", on([0, 1], LogisticRegression(max_iter=1000)).fit(X_train, y_train)),
        ("petal_width", on([3], DecisionTreeClassifier(max_depth=2, random_state=0)).fit(X_train, y_train)),
    ]
    selection = select([m.predict_proba(X_val) for _, m in models], metric, y=y_val, names=["sepals", "petal_width"])
    members, weights = selection.for_vote()
    assert len(members) == 2  # a real mix, not one model
    vote = build_vote([models[i] for i in members], "classification", X_train, y_train, weights=weights)
    served = score_one(METRICS[metric], y_val, vote.predict(X_val), vote.predict_proba(X_val))
    assert selection.score == pytest.approx(served, rel=0, abs=1e-12)
    assert METRICS[metric].better(selection.score, selection.best_single.score)


def test_regression_score_is_what_the_weighted_vote_scores():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.5, random_state=0)
    models = [
        ("linear", on([2, 8], LinearRegression()).fit(X_train, y_train)),
        ("tree", on([3], DecisionTreeRegressor(max_depth=3, random_state=0)).fit(X_train, y_train)),
    ]
    selection = select([m.predict(X_val) for _, m in models], "rmse", y=y_val)
    members, weights = selection.for_vote()
    assert len(members) == 2
    vote = build_vote([models[i] for i in members], "regression", X_train, y_train, weights=weights)
    assert selection.score == pytest.approx(score_one(METRICS["rmse"], y_val, vote.predict(X_val), None), abs=1e-12)


# --- the vectorised metrics are score_one -------------------------------------------------


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("name", list(METRICS))
def test_the_rounds_score_each_ensemble_as_score_one_does(name, k):
    metric = METRICS[name]
    rng = np.random.default_rng(k)
    n = 40
    if metric.task == "regression":
        y = rng.normal(size=n)
        batches = [y + rng.normal(size=(5, n))]
        batches[0][0] = y  # a perfect one
    else:
        y = np.arange(n) % k
        untied = rng.dirichlet(np.ones(k), (5, n))
        tied = untied.round(1)  # tied scores for roc_auc, tied classes for the argmax
        tied[1, :, -1] = 0  # a class never predicted
        tied[1, :, 0] += 0.1
        batches = [untied, tied / tied.sum(axis=2, keepdims=True)]
    for means in batches:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # f1's zero division
            expected = _one_by_one(metric, k)(y, means)
        assert _BATCH_SCORERS[name](y, means) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_a_metric_without_a_vectorised_version_is_scored_by_score_one(monkeypatch):
    a = binary([0.4, 0.4, 0.4, -0.1, -0.2, 0.1])
    b = binary([-0.1, -0.1, -0.1, 0.15, 0.15, 0.1])
    fast = select([a, b], "f1")
    monkeypatch.delitem(_BATCH_SCORERS, "f1")
    assert select([a, b], "f1") == fast


# --- bad inputs -----------------------------------------------------------------------------

P = binary([0.1] * 6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"predictions": []}, "predictions must hold at least one candidate, but got none"),
        (
            {"predictions": [P, P[:, :1]]},
            r"candidate 1 must be probabilities .* of shape \(6, 2\), but got shape \(6, 1\)",
        ),
        ({"predictions": [P[:5], P[:5]]}, r"candidate 0 must have one row per y_val row \(6\), but got shape \(5, 2\)"),
        (
            {"predictions": [P, np.where(np.eye(6, 2) > 0, np.nan, P)], "names": ["rf", "xgb"]},
            "candidate 'xgb' must predict finite values, but got 2 NaN or inf",
        ),
        ({"predictions": [P, P * 2]}, "candidate 1 must predict probabilities between 0 and 1, but got values from"),
        ({"n_classes": 3}, r"candidate 0 must be probabilities .* of shape \(6, 3\), but got shape \(6, 2\)"),
        ({"names": ["one"]}, "names must give one name per candidate, but got 1 names for 2 candidates"),
        ({"y": Y + 1}, "y_val must hold class codes 0..1, but got 2"),
        ({"y": Y[:, None]}, r"y_val must be one-dimensional, but got shape \(6, 1\)"),
        ({"max_rounds": 0}, "max_rounds must be at least 1, but got max_rounds=0"),
        ({"patience": 0}, "patience must be at least 1, but got patience=0"),
        ({"task": "ranking"}, "task must be classification or regression, but got task='ranking'"),
        ({"metric": "rmse"}, r"metric must fit the classification task, but got rmse \(a regression metric\)"),
        (
            {"metric": "roc_auc", "y": np.ones(6, int)},
            "y_val must hold every class 0..1 to score roc_auc, but got only 1",
        ),
        (
            {"task": "regression", "metric": "rmse"},
            r"candidate 0 must be values of shape \(6,\), but got shape \(6, 2\)",
        ),
    ],
)
def test_bad_input_is_refused_in_one_line(change, message):
    args = {"predictions": [P, P], "y": Y, "metric": "accuracy", "task": "classification"} | change
    predictions, y, metric, task = (args.pop(k) for k in ("predictions", "y", "metric", "task"))
    with pytest.raises(MlfleetError, match=message) as error:
        select_ensemble(predictions, y, METRICS[metric], task=task, **args)
    assert "\n" not in str(error.value)


def test_max_members_bounds_the_distinct_models_the_ensemble_holds():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    # five models, each right on a different fifth of the rows and unsure elsewhere: more members, more right
    candidates = []
    for part in range(5):
        p = np.full((200, 2), 0.5)
        rows = np.arange(200) % 5 == part
        p[rows, y[rows]], p[rows, 1 - y[rows]] = 0.9, 0.1
        p[~rows, y[~rows]], p[~rows, 1 - y[~rows]] = 0.45, 0.55
        candidates.append(p)
    free = select_ensemble(candidates, y, METRICS["accuracy"], task="classification", n_classes=2)
    bounded = select_ensemble(candidates, y, METRICS["accuracy"], task="classification", n_classes=2, max_members=2)
    assert len(free.members) > 2 and len(bounded.members) == 2
    assert free.score > bounded.score
