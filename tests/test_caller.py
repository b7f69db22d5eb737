"""Relative paths under `mlflow run`: from the folder it was started in, or refused in a temporary copy."""

import os
import tempfile
from pathlib import Path

import pytest

from mlfleet import caller
from mlfleet.errors import MlfleetError
from mlfleet.settings import Settings

OUTSIDE, UNDER = Settings(), Settings(run_id="abc")  # as read outside and under `mlflow run`


def test_outside_mlflow_run_nothing_moves(monkeypatch, tmp_path):
    caller.follow({"data": "my.csv"}, {}, OUTSIDE)
    assert Path.cwd() == tmp_path


def test_under_mlflow_run_the_command_moves_to_where_it_was_started(monkeypatch, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setattr(caller, "started_in", lambda settings: user)
    caller.follow({"data": "my.csv"}, {}, UNDER)
    assert Path.cwd() == user


def test_in_a_temporary_copy_with_no_known_caller_relative_paths_are_refused(monkeypatch):
    copy = Path(tempfile.mkdtemp())  # where MLflow unpacks a Git or .zip project
    monkeypatch.chdir(copy)
    monkeypatch.setattr(caller, "started_in", lambda settings: None)
    with pytest.raises(MlfleetError, match="give data and results as absolute paths or URIs"):
        caller.follow({"data": "my.csv", "results": ""}, {"results": "lakehouse/model_training_results"}, UNDER)
    # built-in data, URIs and absolute paths are placed already
    caller.follow({"data": "synthetic", "results": "s3://bucket/results"}, {}, UNDER)
    caller.follow({"data": "/abs/x.csv", "results": "main.fleet.results"}, {}, UNDER)
    os.rmdir(copy)


def test_the_mlflow_run_process_is_found_among_the_parents():
    # this test process is no mlflow run: nothing is found, rather than a wrong folder
    assert caller.started_in(OUTSIDE) is None


def test_started_in_the_project_folder_itself_nothing_moves_even_in_the_temp_dir(monkeypatch):
    project = Path(tempfile.mkdtemp())  # `mlflow run .` in a folder of the temp dir: the user's own
    monkeypatch.chdir(project)
    monkeypatch.setattr(caller, "started_in", lambda settings: project)
    caller.follow({"data": "my.csv"}, {"results": "lakehouse/model_training_results"}, UNDER)
    assert Path.cwd() == project
    os.rmdir(project)
