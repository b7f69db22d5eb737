import pytest

from mlfleet.config import DEFAULT_CPU_MODELS, FleetConfig, format_models, parse_models
from mlfleet.errors import MlfleetError
from mlfleet.zoo import cpu_families


def test_default_composition_is_the_seed_fleet_of_90():
    models = parse_models(DEFAULT_CPU_MODELS, cpu_families())
    assert dict(models) == {"logistic": 15, "svm": 10, "random_forest": 20, "xgboost": 20, "gradient_boosting": 15, "naive_bayes": 10}
    assert sum(n for _, n in models) == 90
    assert format_models(models) == DEFAULT_CPU_MODELS


def test_family_without_count_means_one_and_repeats_add_up():
    assert parse_models("svm, svm:2,logistic", cpu_families()) == (("svm", 3), ("logistic", 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("forest:3", r"unknown model family 'forest' in models='forest:3'; known families: logistic"),
        ("svm:0", r"at least 1, but got 'svm:0'"),
        ("svm:-2", r"at least 1, but got 'svm:-2'"),
        ("svm:two", r"whole number, but got 'svm:two'"),
        (" , ", r"at least one family"),
    ],
)
def test_bad_models_name_the_problem(text, message):
    with pytest.raises(MlfleetError, match=message):
        parse_models(text, cpu_families())


def test_params_are_strings_that_describe_the_sweep():
    params = FleetConfig(models=(("svm", 2),)).params()
    assert params["models"] == "svm:2"
    assert params["data"] == "synthetic"
    assert all(isinstance(v, str) for v in params.values())
