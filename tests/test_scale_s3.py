"""Delta on object storage: the results table on S3 (moto's S3 server on 127.0.0.1, started and
stopped here), with the storage options from the environment, concurrent writers, and bad input
stopped at start. train_cpu writing to S3 from a two-node cluster: test_scale_multinode.py."""

import json
import subprocess
import sys

import pytest
from helpers import project_copy, read_results
from servers import child_env, run_entry, s3_server

from mlfleet.stores import rows
from mlfleet.stores.delta import STORAGE_OPTIONS_ENV, DeltaResults
from mlfleet.stores.tables import open_results

SMALL = {"n_trials": "2", "n_samples": "300", "n_features": "8"}


@pytest.fixture(scope="module")
def s3():
    with s3_server() as options:
        yield options


def test_rows_round_trip_with_options_from_the_environment(s3, monkeypatch):
    uri = "s3://lake/roundtrip"
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, json.dumps(s3))
    table = open_results(uri)
    table.check_writable()
    table.ensure()
    row = _row("sweep-a", 7)
    assert table.append([row]) is True
    assert table.append([row]) is False  # the same key twice leaves one row
    frame = read_results(uri)
    assert list(frame["model_id"]) == [7]
    # the same options given explicitly, and as key=value text
    assert len(DeltaResults(uri, rows.RESULTS, options=s3).read()) == 1
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, ",".join(f"{k}={v}" for k, v in s3.items()))
    assert len(read_results(uri)) == 1


def test_concurrent_writers_lose_no_row(s3):
    uri = "s3://lake/concurrent"
    DeltaResults(uri, rows.RESULTS, options=s3).ensure()
    code = (
        "import sys; from mlfleet.stores.tables import open_results; from test_scale_s3 import _row\n"
        f"w = int(sys.argv[1]); table = open_results({uri!r})\n"
        "for i in range(8): table.append([_row(f'sweep-{w}', i)])\n"
    )
    env = child_env(**{STORAGE_OPTIONS_ENV: json.dumps(s3)})
    env["PYTHONPATH"] += ":" + str(__import__("pathlib").Path(__file__).parent)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(w)], env=env, stderr=subprocess.PIPE, text=True)
        for w in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    frame = DeltaResults(uri, rows.RESULTS, options=s3).read()
    assert len(frame) == 32 and len(frame.groupby(["sweep_id", "model_id"])) == 32


@pytest.mark.parametrize(
    ("results_uri", "options", "message"),
    [
        (
            "s3://lake/bad",
            "AWS_REGION=us-east-1,oops",
            f"error: {STORAGE_OPTIONS_ENV} must be key=value,... or a JSON object, but item 2 is not key=value",
        ),
        ("s3://lake/bad", '{"AWS_REGION": ', f"error: {STORAGE_OPTIONS_ENV} is not valid JSON"),
        ("ftp://host/table", "", "error: results=ftp://host/table has the unknown scheme ftp://"),
    ],
)
def test_bad_storage_input_stops_at_start(s3, tmp_path, results_uri, options, message):
    project = project_copy(tmp_path / "project")
    env = {STORAGE_OPTIONS_ENV: options, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = run_entry(project, "train_cpu", {"models": "naive_bayes:1", "results": results_uri, **SMALL}, env=env)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(message), last
    assert not (tmp_path / "mlflow.db").exists()


def _row(sweep_id: str, model_id: int) -> rows.ResultRow:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    values = {name: None for name in rows.schema().names}
    values.update(
        sweep_id=sweep_id,
        model_id=model_id,
        model_type="GaussianNB",
        family="naive_bayes",
        device="cpu",
        feature_strategy="all",
        task="classification",
        params_json="{}",
        primary_metric="f1",
        n_trials=1,
        cpus=1.0,
        gpus=0.0,
        status="FINISHED",
        error="",
        mlflow_run_id="",
        model_uri="",
        experiment_id="0",
        dataset="synthetic",
        dataset_digest="",
        started_at=now,
        finished_at=now,
        node="",
        entry_point="train_cpu",
    )
    return rows.ResultRow(**values)


def test_sharded_reads_of_a_table_on_s3(s3, tmp_path):
    """A Delta table and a Parquet folder on S3: planned from footers, each shard read alone, the same rows."""
    import boto3
    import pyarrow.parquet as pq
    from deltalake import write_deltalake
    from test_parts import PARTITIONS, _ids, _table

    from mlfleet.data import Reader, plan_parts, read_holdout, read_part

    table = _table()
    write_deltalake("s3://lake/parts_delta", table, storage_options=s3)
    local = tmp_path / "part-0.parquet"
    pq.write_table(table, local, row_group_size=200)
    boto3.client(
        "s3",
        endpoint_url=s3["AWS_ENDPOINT_URL"],
        aws_access_key_id=s3["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3["AWS_SECRET_ACCESS_KEY"],
        region_name=s3["AWS_REGION"],
    ).put_object(Bucket="lake", Key="parts_parquet/part-0.parquet", Body=local.read_bytes())
    plans = []
    for uri in ("s3://lake/parts_delta", "s3://lake/parts_parquet"):
        reader = Reader(s3)
        plan = plan_parts(uri, target="y", partitions=PARTITIONS, key="id", storage_options=s3, reader=reader)
        assert reader.rows_read == 0 and reader.requests == 2 * len(plan.files)
        plans.append(plan)
    delta, parquet = plans
    assert (delta.format, parquet.format) == ("delta", "parquet")
    shards = [_ids(read_part(parquet, i, columns=["id"])) for i in range(PARTITIONS)]  # with the plan's options
    val = _ids(read_holdout(delta, "val"))
    assert val == _ids(read_holdout(parquet, "val"))
    assert sorted(sum(shards, [])) == sorted(
        set(_ids(table.to_pandas()))
        - set(val)
        - set(_ids(read_holdout(delta, "test")))
        - {i for i in range(0, table.num_rows, 97)}
    )
