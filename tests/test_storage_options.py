"""Storage options for Delta on object storage: the two spellings, and errors that never show a value."""

import pytest

from mlfleet.errors import MlfleetError
from mlfleet.stores.delta import STORAGE_OPTIONS_ENV, DeltaResults, parse_storage_options, storage_options
from mlfleet.stores.rows import RESULTS


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("", {}),
        ("AWS_REGION=eu-west-1, AWS_ALLOW_HTTP=true", {"AWS_REGION": "eu-west-1", "AWS_ALLOW_HTTP": "true"}),
        ("token=a=b==", {"token": "a=b=="}),  # base64 secrets keep their '='
        (
            '{"AWS_REGION": "eu-west-1", "AWS_ALLOW_HTTP": true, "timeout": 30}',
            {"AWS_REGION": "eu-west-1", "AWS_ALLOW_HTTP": "true", "timeout": "30"},
        ),
    ],
)
def test_both_spellings(text, options):
    assert parse_storage_options(text) == options


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("AWS_SECRET_ACCESS_KEY", "item 1 is not key=value"),
        ("a=1,=hunter2", "item 2 is not key=value"),
        ('{"AWS_SECRET_ACCESS_KEY": "hunter2"', "is not valid JSON"),
        ('["hunter2"]', "must be a JSON object"),
    ],
)
def test_bad_text_is_named_without_its_values(text, message):
    with pytest.raises(MlfleetError, match=message) as caught:
        parse_storage_options(text)
    assert "hunter2" not in str(caught.value) and STORAGE_OPTIONS_ENV in str(caught.value)


def test_explicit_options_win_over_the_environment(monkeypatch):
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, "AWS_REGION=eu-west-1")
    assert storage_options() == {"AWS_REGION": "eu-west-1"}
    assert storage_options({"AWS_REGION": "us-east-1"}) == {"AWS_REGION": "us-east-1"}
    monkeypatch.delenv(STORAGE_OPTIONS_ENV)
    assert storage_options() is None


def test_unknown_scheme():
    with pytest.raises(MlfleetError, match=r"unknown scheme hdfs://; use a folder or an s3://, abfss:// or gs:// URI"):
        DeltaResults("hdfs://namenode/t", RESULTS).check_writable()
