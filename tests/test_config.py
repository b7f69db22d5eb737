import subprocess
import sys

import pytest
from helpers import REPO

from mlfleet.config import (
    CPU_FLEET,
    AnalysisConfig,
    DataConfig,
    FleetConfig,
    GpuFleetConfig,
    format_models,
    from_values,
    parameters,
    parse_models,
)
from mlfleet.errors import MlfleetError
from mlfleet.zoo import cpu_families

SEED_FLEET = "logistic:15,svm:10,random_forest:20,xgboost:20,gradient_boosting:15,naive_bayes:10"


def test_default_composition_is_the_seed_fleet_of_90():
    models = parse_models(format_models(CPU_FLEET), cpu_families())
    assert dict(models) == {
        "logistic": 15,
        "svm": 10,
        "random_forest": 20,
        "xgboost": 20,
        "gradient_boosting": 15,
        "naive_bayes": 10,
    }
    assert sum(n for _, n in models) == 90
    assert models == CPU_FLEET and FleetConfig().models == CPU_FLEET
    assert format_models(models) == format_models(CPU_FLEET) == SEED_FLEET


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


def test_the_one_seed_is_the_data_seed():
    config = FleetConfig(data=DataConfig(seed=7))
    assert config.params()["seed"] == "7"
    assert not hasattr(config, "seed")


def test_parameters_are_the_fields_flattened_without_the_hidden_ones():
    names = [p.name for p in parameters(FleetConfig)]
    assert names[:9] == ["data", "target", "task", "drop", "n_samples", "n_features", "test_size", "val_size", "seed"]
    assert "models" in names and "first_id" in names and "resume" in names
    assert "device" not in names and "gpus_per_model" not in names  # the CPU fleet offers no GPU
    assert "entry_point" not in names  # a field, not a parameter
    assert {"device", "gpus_per_model"} <= {p.name for p in parameters(FleetConfig, hidden=True)}
    assert {"device", "gpus_per_model"} <= {p.name for p in parameters(GpuFleetConfig)}
    by_name = {p.name: p for p in parameters(FleetConfig)}
    assert by_name["data"].path == ("data", "source") and by_name["seed"].path == ("data", "seed")
    assert by_name["models"].default_text == SEED_FLEET
    assert all(p.help for p in parameters(FleetConfig, hidden=True))
    assert [p.name for p in parameters(AnalysisConfig)][2] == "sweep"


def test_from_values_parses_text_as_the_command_line_does():
    config = from_values(
        FleetConfig,
        {
            "models": "svm:2,logistic",
            "n_trials": "5",
            "first_id": "90",
            "seed": "7",
            "data": "diabetes",
            "test_size": "0.3",
        },
    )
    assert config.models == (("svm", 2), ("logistic", 1))
    assert config.n_trials == 5 and config.first_id == 90
    assert config.data == DataConfig(source="diabetes", seed=7, test_size=0.3)
    assert config.results == FleetConfig().results  # names not given keep their defaults
    assert from_values(AnalysisConfig, {"sweep": "a, b,a", "k": "3"}) == AnalysisConfig(sweeps=("a", "b"), k=3)


def test_from_values_takes_values_too():
    config = from_values(FleetConfig, {"models": (("svm", 2),), "n_trials": 5, "seed": 7})
    assert config == FleetConfig(data=DataConfig(seed=7), models=(("svm", 2),), n_trials=5)
    assert from_values(FleetConfig, {}) == FleetConfig()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": "svm:2"}, r"unknown parameter\(s\) model; FleetConfig takes data, target"),
        ({"models": "forest:3"}, r"unknown model family 'forest'"),
        ({"n_trials": "many"}, r"n_trials.*'many'"),
    ],
)
def test_from_values_refuses_what_it_cannot_use(values, message):
    with pytest.raises(MlfleetError, match=message):
        from_values(FleetConfig, values)


def test_mlproject_and_the_parameter_docs_agree_with_the_configs():
    proc = subprocess.run(
        [sys.executable, "-m", "mlfleet.manifest", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
