"""The sharded reader: shards planned from metadata, each read by its own member, held-out rows by row hash."""

from __future__ import annotations

import os
import pickle
import re
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO

from mlfleet.data import Reader, check_csv_size, plan_parts, read_holdout, read_part, read_sample, table_bytes
from mlfleet.data._parts import row_buckets, row_parts
from mlfleet.errors import MlfleetError

pytestmark = pytest.mark.unit

ROWS, FILES, GROUP_ROWS, PARTITIONS = 1200, 3, 110, 4


def _table(rows: int = ROWS, seed: int = 0) -> pa.Table:
    """Ids, numbers with gaps, text with gaps, a 0/1 target with a few missing."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, rows).astype(float)
    target[::97] = np.nan
    return pa.table(
        {
            "id": np.arange(rows, dtype=np.int64),
            "x": rng.normal(size=rows),
            "n": pa.array([None if i % 13 == 0 else int(i % 50) for i in range(rows)], pa.int64()),
            "seg": pa.array([None if i % 31 == 0 else f"s{i % 7}" for i in range(rows)]),
            "y": pa.array(target, from_pandas=True).cast(pa.int64()),
        }
    )


def _write(table: pa.Table, folder, *, delta: bool, files: int = FILES, group_rows: int = GROUP_ROWS) -> str:
    """The table in ``files`` files of ``group_rows``-row row groups: a Parquet folder or a Delta table."""
    from deltalake import WriterProperties, write_deltalake

    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        part = table.slice(start, stop - start)
        if delta:
            props = WriterProperties(max_row_group_size=group_rows)
            write_deltalake(str(folder), part, mode="append", writer_properties=props)
        else:
            folder.mkdir(exist_ok=True)
            pq.write_table(part, folder / f"part-{i}.parquet", row_group_size=group_rows)
    return str(folder)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """``{"parquet": folder, "delta": folder}`` holding the same rows in the same row groups."""
    root = tmp_path_factory.mktemp("parts")
    table = _table()
    return {kind: _write(table, root / kind, delta=kind == "delta") for kind in ("parquet", "delta")}


def _plan(location, **given):
    return plan_parts(location, **{"target": "y", "partitions": PARTITIONS, "seed": 7, **given})


def _ids(frame: pd.DataFrame) -> list[int]:
    return sorted(frame["id"].tolist())


def _chunks(plan, groups=None) -> dict[str, list[tuple[int, int]]]:
    """``{file: [(start, stop)]}`` of the column chunks (data pages) of ``groups`` (``(file, row group)``; all)."""
    found: dict[str, list[tuple[int, int]]] = {}
    for f, path in enumerate(plan.files):
        md = pq.read_metadata(os.path.join(plan.location, path))
        for r in range(md.num_row_groups):
            if groups is not None and (f, r) not in groups:
                continue
            for c in range(md.num_columns):
                col = md.row_group(r).column(c)
                start = min(o for o in (col.dictionary_page_offset, col.data_page_offset) if o is not None)
                found.setdefault(path, []).append((start, start + col.total_compressed_size))
    return found


def _overlaps(ranges, chunks) -> list:
    return [(p, a, b) for p, a, b in ranges for c, d in chunks.get(p, []) if a < d and c < b]


def _footer_bytes(plan) -> int:
    return sum(pq.read_metadata(os.path.join(plan.location, p)).serialized_size + 8 for p in plan.files)


@pytest.mark.parametrize("kind", ["parquet", "delta"])
def test_plan_reads_footers_only(tables, kind):
    reader = Reader()
    plan = _plan(tables[kind], reader=reader)
    assert plan.format == kind and plan.total_rows == ROWS and len(plan.files) == FILES
    assert sum(map(len, plan.row_groups)) == FILES * -(-ROWS // FILES // GROUP_ROWS)
    assert [name for name, _ in plan.schema] == ["id", "x", "n", "seg", "y"]
    assert plan.missing_target == len(range(0, ROWS, 97))
    # two reads per file, exactly its footer and the 8 bytes after it, and not one byte of a column chunk
    assert reader.requests == 2 * FILES and reader.bytes_read == _footer_bytes(plan)
    assert _overlaps(reader.ranges, _chunks(plan)) == [] and reader.rows_read == 0
    sizes = [sum(p.stop - p.start for p in shard) for shard in plan.shards]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == ROWS
    assert pickle.loads(pickle.dumps(plan)) == plan and len(pickle.dumps(plan)) < 4000


@pytest.mark.parametrize("kind", ["parquet", "delta"])
def test_a_shard_reads_only_its_row_groups(tables, kind):
    plan = _plan(tables[kind])
    whole = [pq.read_table(os.path.join(plan.location, p)) for p in plan.files]
    for index, shard in enumerate(plan.shards):
        reader = Reader()
        got = read_part(plan, index, reader=reader)
        mine = {(p.file, p.row_group) for p in shard}
        data = [r for r in reader.ranges if _overlaps([r], _chunks(plan))]  # all but the footers
        assert data and _overlaps(data, _chunks(plan, mine)) == data  # its own row groups' pages
        assert _overlaps(data, _chunks(plan, _groups(plan) - mine)) == []  # and no other's
        assert reader.rows_read == plan.shard_rows(index)
        rows = pa.concat_tables(_piece(plan, whole, p) for p in shard)
        expected = rows.filter(pa.array(row_parts(rows, plan) == 0))
        assert _ids(got) == sorted(expected.column("id").to_pylist())
        assert list(got.columns) == list(plan.columns) and list(got.index) == list(range(len(got)))


def _groups(plan) -> set[tuple[int, int]]:
    return {(f, r) for f, groups in enumerate(plan.row_groups) for r in range(len(groups))}


def _piece(plan, whole, piece) -> pa.Table:
    """The rows of ``piece``, cut from its whole file."""
    start = sum(plan.row_groups[piece.file][: piece.row_group]) + piece.start
    return whole[piece.file].slice(start, piece.stop - piece.start)


@pytest.mark.parametrize("kind", ["parquet", "delta"])
@pytest.mark.parametrize("partition_by", ["", "seg"])
def test_every_row_once_and_held_out_rows_never_train(tables, kind, partition_by):
    plan = _plan(tables[kind], partition_by=partition_by)
    shards = [_ids(read_part(plan, i, columns=["id"])) for i in range(PARTITIONS)]
    val, test = _ids(read_holdout(plan, "val", columns=["id"])), _ids(read_holdout(plan, "test", columns=["id"]))
    every = [i for shard in shards for i in shard] + val + test
    with_target = [i for i in range(ROWS) if i % 97]  # a row without a target is in no part
    assert sorted(every) == with_target
    held = set(val) | set(test)
    assert not set(val) & set(test) and all(not held & set(shard) for shard in shards)
    assert 0.12 < len(val) / ROWS < 0.28 and 0.12 < len(test) / ROWS < 0.28


def test_the_held_out_rows_are_the_same_in_another_process_and_order(tables, tmp_path):
    plan = _plan(tables["parquet"], key="id")
    val, test = _ids(read_holdout(plan, "val")), _ids(read_holdout(plan, "test"))
    # another process, another hash seed for Python's own hashes
    code = (
        "import sys; from mlfleet.data import plan_parts, read_holdout; "
        f"p = plan_parts(sys.argv[1], target='y', partitions={PARTITIONS}, seed=7, key='id'); "
        "print(sorted(read_holdout(p, 'val')['id'].tolist()))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code, tables["delta"]], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert eval(out.stdout) == val
    # the rows shuffled into other files and row groups, and a pickled plan read elsewhere
    shuffled = _table().take(np.random.default_rng(1).permutation(ROWS))
    again = _plan(_write(shuffled, tmp_path / "shuffled", delta=False, files=2, group_rows=250), key="id")
    assert _ids(read_holdout(again, "val")) == val and _ids(read_holdout(again, "test")) == test
    assert _ids(read_holdout(pickle.loads(pickle.dumps(plan)), "test")) == test
    # without a key, the rows' content decides, which also does not depend on where a row is
    content = _plan(tables["parquet"])
    assert _ids(read_holdout(_plan(str(tmp_path / "shuffled")), "val")) == _ids(read_holdout(content, "val"))
    # another seed, other rows
    assert _ids(read_holdout(_plan(tables["parquet"], key="id", seed=8), "val")) != val


def test_parquet_and_delta_give_the_same_shards(tables):
    parquet, delta = _plan(tables["parquet"]), _plan(tables["delta"])
    assert parquet.files != delta.files  # Delta names its files itself: the order comes from the row groups
    for index in range(PARTITIONS):
        assert _ids(read_part(parquet, index, columns=["id"])) == _ids(read_part(delta, index, columns=["id"]))
    for which in ("val", "test"):
        assert _ids(read_holdout(parquet, which)) == _ids(read_holdout(delta, which))
    assert _plan(tables["parquet"], seed=8).shards != parquet.shards


@pytest.mark.parametrize("kind", ["parquet", "delta"])
def test_partition_by_keeps_exactly_its_hash_bucket(tables, kind):
    plan = _plan(tables[kind], partition_by="seg")
    assert plan.shards == () and plan.partition_by == "seg"
    table = _table()
    train = table.filter(pa.array(row_parts(table, plan) == 0))
    buckets = row_buckets(train, plan)
    owner: dict = {}
    for index in range(PARTITIONS):
        reader = Reader()
        got = read_part(plan, index, reader=reader)
        assert reader.rows_read == ROWS  # a bucket member scans the table
        assert _ids(got) == sorted(np.asarray(train.column("id"))[buckets == index].tolist())
        for value in got["seg"].astype(object).where(got["seg"].notna(), None).unique():
            assert owner.setdefault(value, index) == index  # every value, and the missing one, in one shard
    assert len(owner) == 8


@pytest.mark.parametrize("partition_by", ["", "seg"])
def test_a_sample_is_training_rows_stratified_and_the_same_from_parquet_and_delta(tables, partition_by):
    parquet = _plan(tables["parquet"], partition_by=partition_by)
    delta = _plan(tables["delta"], partition_by=partition_by)
    train = set(np.concatenate([_ids(read_part(parquet, i, columns=["id"])) for i in range(PARTITIONS)]).tolist())
    sample = read_sample(parquet, 300)
    assert len(sample) == 300 and set(sample["id"]) <= train  # never a validation or test row
    assert list(sample.columns) == list(parquet.columns)
    # the same rows in the same order from Delta, whose files are named otherwise
    assert read_sample(delta, 300)["id"].tolist() == sample["id"].tolist()
    # stratified: each class its share of the training rows, to a row
    rows = _table().filter(pa.array(np.isin(np.arange(ROWS), sorted(train)))).to_pandas()
    shares = rows["y"].value_counts(normalize=True)
    assert (sample["y"].value_counts() - 300 * shares).abs().max() <= 1
    assert read_sample(parquet, 120, columns=["id"]).columns.tolist() == ["id"]
    assert sorted(read_sample(parquet, 10_000, columns=["id"])["id"]) == sorted(train)  # fewer: all of them
    assert read_sample(_plan(tables["parquet"], seed=8), 300)["id"].tolist() != sample["id"].tolist()


def test_table_bytes_estimates_pandas_memory_from_the_footers_and_one_batch(tables):
    reader = Reader()
    plan = _plan(tables["parquet"], reader=reader)
    before = reader.bytes_read
    estimate = table_bytes(plan, reader=reader)
    actual = _table().to_pandas().memory_usage(deep=True, index=False).sum()
    assert 0.8 * actual < estimate < 1.25 * actual
    assert reader.bytes_read - before < sum(plan.file_bytes) / FILES  # a footer and one row group's text
    assert table_bytes(_plan(tables["delta"])) == estimate


def test_a_csv_too_big_is_refused_with_a_conversion_that_works(tmp_path):
    path = tmp_path / "big.csv"
    _table(3000).to_pandas().to_csv(path, index=False)
    before = sorted(tmp_path.iterdir())
    assert 0 < check_csv_size(str(path), 10_000_000) < 10_000_000
    with pytest.raises(MlfleetError, match=r"convert it to Parquet without loading it whole: python -c") as info:
        check_csv_size(str(path), 10_000)
    message = str(info.value)
    assert "\n" not in message and "write_dataset" in message and "Delta" in message
    assert sorted(tmp_path.iterdir()) == before  # nothing written
    command = re.search(r"(python -c .*?) and pass data=(\S+),", message)
    done = subprocess.run(shlex.split(command.group(1)), cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    converted = plan_parts(command.group(2), target="y", partitions=2)
    assert converted.total_rows == 3000 and converted.format == "parquet"


@pytest.mark.parametrize(
    "where, given, message",
    [
        ("parquet", {"partitions": 0}, r"partitions must be at least 1, but got partitions=0"),
        ("parquet", {"partitions": True}, r"partitions must be at least 1, but got partitions=True"),
        ("parquet", {"partitions": 500}, r"partitions=500 is more than .* allows"),
        ("parquet", {"partition_by": "nope"}, r"unknown partition_by column 'nope' \(not a column\)"),
        ("delta", {"partition_by": "y"}, r"unknown partition_by column 'y' \(the target\)"),
        ("delta", {"target": "label"}, r"target column 'label' is not in data=.*; its columns are: id, x"),
        ("parquet", {"key": "id,nope"}, r"key names nope, not columns of data="),
        ("parquet", {"test_size": 0.6, "val_size": 0.5}, r"test_size and val_size must be .* sum below 1"),
        ("missing", {}, r"data file not found"),
        ("csv", {}, r"is neither a Parquet file or folder nor a Delta table \(a CSV: convert it"),
        ("text", {}, r"is neither a Parquet file or folder nor a Delta table;"),
        ("empty", {}, r"is neither a Parquet file or folder nor a Delta table;"),
        ("fake", {}, r"cannot read the Parquet footer of fake.parquet \(not a Parquet file"),
    ],
)
def test_bad_input_is_one_line(tables, tmp_path, where, given, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "t.csv").write_text("a,y\n1,0\n")
    (tmp_path / "t.txt").write_text("a,y\n1,0\n")
    (tmp_path / "fake.parquet").write_text("not parquet at all")
    location = {
        **tables,
        "missing": str(tmp_path / "nothing"),
        "csv": str(tmp_path / "t.csv"),
        "text": str(tmp_path / "t.txt"),
        "empty": str(tmp_path / "empty"),
        "fake": str(tmp_path / "fake.parquet"),
    }[where]
    with pytest.raises(MlfleetError, match=message) as info:
        _plan(location, **given)
    assert "\n" not in str(info.value)


def test_bad_reads_are_one_line(tables):
    plan = _plan(tables["parquet"])
    for call, message in (
        (lambda: read_part(plan, PARTITIONS), r"shard index must be 0 to 3, but got index=4"),
        (lambda: read_holdout(plan, "train"), r"which must be val or test, but got which='train'"),
        (lambda: read_part(plan, 0, columns=["nope"]), r"columns nope are not in data="),
    ):
        with pytest.raises(MlfleetError, match=message):
            call()


def test_storage_options_are_kept_out_of_sight(tables, monkeypatch):
    plan = _plan(tables["delta"], storage_options={"AWS_SECRET_ACCESS_KEY": "s3cr3t"})
    assert "s3cr3t" not in repr(plan) and "s3cr3t" not in plan.describe()
    assert len(read_part(plan, 0)) > 0
    monkeypatch.setenv("MLFLEET_STORAGE_OPTIONS", "not options")  # read as the results tables read it
    with pytest.raises(MlfleetError, match=r"MLFLEET_STORAGE_OPTIONS must be key=value"):
        _plan(tables["delta"])
