"""Property-based fuzzing of every reader and of normalize_record (issue 9 item 5).

Good records are mixed with random bytes, random JSON values, deep nesting, huge numbers, lone
surrogates, and records re-encoded in other encodings. The properties, proved by counting:
no exception escapes, ``read == stored + duplicates + quarantined``, and every good record is
stored under its request id. ``scripts/fuzz_ingest.py`` runs the same idea at a larger scale.
"""

import csv
import gzip
import io
import json
import tempfile
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptcov.index.ingest import ingest_files
from promptcov.index.records import KNOWN_FIELDS, BadRecord, normalize_record, text_id
from promptcov.index.store import Store

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]), min_size=1)
any_text = st.one_of(st.text(max_size=40), surrogates.map(lambda s: "x" + s))
huge_ints = st.sampled_from([2**31, 2**40, 2**63, -(2**63) - 1, 10**30, 10**400])
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), huge_ints, st.floats(allow_nan=True), any_text),
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=12)
clean_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**62), 2**62), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=8), kids, max_size=3)),
    max_leaves=8)
field_names = st.one_of(st.sampled_from(KNOWN_FIELDS), st.text(max_size=10))
recordish = st.dictionaries(field_names, json_values, max_size=8)
deep = st.integers(50, 5000).map(lambda d: "[" * d + "1" + "]" * d)


@st.composite
def good_records(draw, i):
    rec = {"account_id": "acct-" + draw(st.text(min_size=1, max_size=12)),
           "timestamp": draw(st.one_of(st.integers(0, 4_000_000_000), st.just("2026-11-16T09:12:44+01:00"))),
           "prompt": f"good {i}: " + draw(st.text(max_size=60))}
    if draw(st.booleans()):
        rec["request_id"] = f"good-{i}"
    if draw(st.booleans()):
        rec["turn_index"] = draw(st.integers(0, 2**31 - 1))
    if draw(st.booleans()):
        rec["meta_" + draw(st.text(max_size=5))] = draw(clean_values)
    return rec


def _noise_jsonl(draw) -> bytes:
    kind = draw(st.sampled_from(["bytes", "record", "deep", "encoded", "surrogate", "bignum"]))
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    if kind == "record":
        return json.dumps(draw(recordish)).encode()
    if kind == "deep":
        return ('{"account_id": "a", "timestamp": 1, "prompt": "p", "x": ' + draw(deep) + "}").encode()
    if kind == "encoded":
        rec = {"account_id": "é", "timestamp": 1, "prompt": draw(st.text(min_size=1, max_size=20))}
        return json.dumps(rec, ensure_ascii=False).encode(draw(st.sampled_from(["utf-16", "latin-1", "utf-32"])),
                                                          "replace")
    if kind == "surrogate":
        return json.dumps({"account_id": "a", "timestamp": 1, "prompt": "p" + draw(surrogates)}).encode()
    return ('{"account_id": "a", "timestamp": ' + str(draw(huge_ints)) + ', "prompt": "p", "turn_index": '
            + str(draw(huge_ints)) + "}").encode()


@st.composite
def mixed_log(draw):
    """``(goods, lines)``: the good records, and every line (good or noise) in file order."""
    n = draw(st.integers(1, 12))
    goods, lines = [], []
    for i in range(n):
        for _ in range(draw(st.integers(0, 2))):
            lines.append(_noise_jsonl(draw))
        rec = draw(good_records(i))
        goods.append(rec)
        lines.append(json.dumps(rec, ensure_ascii=draw(st.booleans())).encode("utf-8"))
    return goods, lines


def _check(store: Store, summary, goods: list[dict]) -> None:
    assert summary.read == summary.stored + summary.duplicates + summary.quarantined
    assert summary.stored == store.count("requests")
    prompts = {r[0] for r in store.con.execute("SELECT prompt FROM texts").fetchall()}
    ids = {r[0] for r in store.con.execute("SELECT request_id FROM requests").fetchall()}
    for rec in goods:
        assert rec["prompt"] in prompts, rec
        if "request_id" in rec:
            assert rec["request_id"] in ids, rec
    assert len(list(store.quarantined())) == summary.quarantined


def _run(tmp: Path, name: str, data: bytes, goods: list[dict], batch_size: int, **kw):
    path = tmp / name
    path.write_bytes(data)
    store = Store(tmp / "store")
    try:
        summary = ingest_files(store, [path], batch_size=batch_size, **kw)
        _check(store, summary, goods)
    finally:
        store.close()


@FUZZ
@given(log=mixed_log(), gz=st.booleans(), batch_size=st.sampled_from([4, 1000]))
def test_fuzz_jsonl(log, gz, batch_size):
    goods, lines = log
    data = b"\n".join(lines) + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        _run(Path(tmp), "f.jsonl.gz" if gz else "f.jsonl", gzip.compress(data) if gz else data, goods, batch_size)


csv_noise = st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode),
                      st.sampled_from([b'"', b'a,b,"open', b'x,"y""', b'"",,,', b"\xef\xbb\xbf", b"\x00,\x00"]))


@FUZZ
@given(data=st.data(), gz=st.booleans(), bom=st.booleans(), batch_size=st.sampled_from([4, 1000]))
def test_fuzz_csv(data, gz, bom, batch_size):
    cols = ["account_id", "timestamp", "prompt", "request_id", "turn_index", "model"]
    goods, chunks = [], [("\ufeff" if bom else "").encode() + b"account_id,timestamp,prompt,request_id,turn_index,model\n"]
    for i in range(data.draw(st.integers(1, 10))):
        for _ in range(data.draw(st.integers(0, 2))):
            chunks.append(data.draw(csv_noise) + b"\n")
        rec = data.draw(good_records(i))
        rec = {k: v for k, v in rec.items() if k in cols}
        rec["prompt"] = rec["prompt"].replace("\x00", "")  # NUL bytes are not CSV text
        goods.append(rec)
        buf = io.StringIO()
        csv.writer(buf).writerow([rec.get(c, "") for c in cols])
        chunks.append(buf.getvalue().encode("utf-8"))
    raw = b"".join(chunks)
    with tempfile.TemporaryDirectory() as tmp:
        _run(Path(tmp), "f.csv.gz" if gz else "f.csv", gzip.compress(raw) if gz else raw, goods, batch_size,
             max_record_lines=50)


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_fuzz_parquet_folder(data):
    n = data.draw(st.integers(1, 20))
    goods = [{"account_id": f"a{i}", "timestamp": 1763284364 + i, "prompt": f"good {i}: "
              + data.draw(st.text(max_size=30)), "request_id": f"good-{i}"} for i in range(n)]
    extra_type = data.draw(st.sampled_from([pa.int64(), pa.string(), pa.float64(), pa.binary(), pa.bool_(),
                                            pa.list_(pa.int32()), pa.timestamp("s")]))
    extra_vals = {pa.int64(): st.integers(-(2**63), 2**63 - 1), pa.string(): st.text(max_size=10),
                  pa.float64(): st.floats(), pa.binary(): st.binary(max_size=10), pa.bool_(): st.booleans(),
                  pa.list_(pa.int32()): st.lists(st.integers(-(2**31), 2**31 - 1), max_size=3),
                  pa.timestamp("s"): st.integers(-(2**40), 2**40)}[extra_type]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "logs"
        folder.mkdir()
        split = data.draw(st.integers(0, n))
        for k, part in enumerate((goods[:split], goods[split:])):
            if not part:
                continue
            tbl = {c: [g[c] for g in part] for c in goods[0]}
            tbl["extra"] = pa.array([data.draw(st.none() | extra_vals) for _ in part], extra_type)
            # a bad row of each kind the contract names, in the same file
            tbl = pa.table(tbl)
            bad = pa.table({"account_id": [None], "timestamp": [1], "prompt": ["no account"],
                            "request_id": ["bad"], "extra": pa.array([None], extra_type)}, schema=tbl.schema)
            pq.write_table(pa.concat_tables([tbl, bad]), folder / f"part-{k}.parquet")
        (folder / "README.txt").write_text("not parquet")
        (folder / "junk.parquet").write_bytes(data.draw(st.binary(max_size=64)))
        store = Store(Path(tmp) / "store")
        try:
            summary = ingest_files(store, [folder], batch_size=1000)
            _check(store, summary, goods)
            assert summary.skipped_files == [str(folder / "README.txt")]
        finally:
            store.close()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("fuzz") / "store")
    yield store
    store.close()


@settings(FUZZ, max_examples=100)
@given(raw=st.one_of(recordish, json_values, recordish.map(lambda d: {**d, "account_id": "a", "timestamp": 1,
                                                                      "prompt": "p"})))
def test_fuzz_normalize_record_accepts_only_what_the_store_can_hold(shared_store, raw):
    try:
        row = normalize_record(raw, "f.jsonl", 1)
    except BadRecord:
        return
    row["text_id"] = text_id(row["system"], row["prompt"])
    row["request_id"] = str(uuid.uuid4())
    assert shared_store.add_requests([row]) == (1, 0, [])
