import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promptcov.errors import InputError
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store

GOOD = [
    {"request_id": "r-1", "account_id": "acct-19", "timestamp": "2026-11-16T09:12:44Z",
     "prompt": "Write a haiku about rain", "model": "claude-x", "ip": "203.0.113.7"},
    {"account_id": "acct-20", "timestamp": 1763284364, "messages": [
        {"role": "system", "content": "You are a grader."},
        {"role": "user", "content": "Score this answer 1-10 using the rubric ..."}]},
    {"request_id": "r-3", "account_id": "acct-19", "timestamp": 1763284364123, "prompt": "Write a haiku about rain"},
]

BAD = {  # one of each bad-input case of log-format.md, with the reason it must be quarantined for
    '{"account_id": "x", "timestamp": ': "invalid JSON",
    json.dumps({"timestamp": "2026-11-16T09:12:44Z", "prompt": "p"}): "missing required field 'account_id'",
    json.dumps({"account_id": "x", "prompt": "p"}): "missing required field 'timestamp'",
    json.dumps({"account_id": "x", "timestamp": "2026-11-16T09:12:44Z"}): "missing required field 'prompt'",
    json.dumps({"account_id": 12, "timestamp": "2026-11-16T09:12:44Z", "prompt": "p"}): "wrong type",
    json.dumps({"account_id": "x", "timestamp": "not a time", "prompt": "p"}): "unparseable timestamp",
    json.dumps({"account_id": "x", "timestamp": "2026-11-16T09:12:44Z", "prompt": ""}): "empty prompt",
}


def test_jsonl_good_and_bad_records_are_all_accounted_for(tmp_path, write_jsonl):
    lines = [json.dumps(GOOD[0])] + list(BAD) + [json.dumps(GOOD[1]), json.dumps(GOOD[2])]
    log = write_jsonl("mixed.jsonl", lines)
    store = Store(tmp_path / "store")
    s = ingest_files(store, [log], batch_size=2)
    assert (s.read, s.stored, s.duplicates, s.quarantined) == (10, 3, 0, 7)
    assert store.count("requests") == 3
    assert store.count("texts") == 2  # the two haiku requests share one text
    q = list(store.quarantined())
    assert len(q) == 7
    by_line = {r["line"]: r for r in q}
    for i, reason in enumerate(BAD.values(), start=2):
        assert reason in by_line[i]["reason"], (i, by_line[i])
        assert by_line[i]["source"] == str(log)
    assert by_line[2]["raw"].startswith('{"account_id": "x"')  # undecodable text kept verbatim


def test_reingest_is_idempotent(tmp_path, write_jsonl):
    log = write_jsonl("a.jsonl", [json.dumps(r) for r in GOOD])
    store = Store(tmp_path / "store")
    first = ingest_files(store, [log])
    again = ingest_files(store, [log])
    assert first.stored == 3 and again.stored == 0 and again.duplicates == 3
    assert store.count("requests") == 3
    n = store.con.execute("SELECT n_requests FROM texts WHERE prompt = 'Write a haiku about rain'").fetchall()
    assert n == [(2,)]


def test_gzip_csv_and_parquet_containers(tmp_path):
    gz = tmp_path / "a.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(json.dumps(GOOD[0]) + "\n")
    csv_path = tmp_path / "b.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["account_id", "timestamp", "prompt", "turn_index"])
        w.writerow(["c1", "1763284364", 'multi-line, "quoted"\nprompt', "2"])
        w.writerow(["c2", "2026-11-16T09:12:44Z", "", ""])  # empty prompt -> quarantined
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    pq.write_table(pa.table({"account_id": ["p1", "p2"], "timestamp": ["2026-11-16T09:12:44Z", "x"],
                             "prompt": ["hello", "world"]}), pq_dir / "part-0.parquet")
    store = Store(tmp_path / "store")
    s = ingest_files(store, [gz, csv_path, pq_dir])
    assert (s.stored, s.quarantined) == (3, 2)
    row = store.con.execute("SELECT turn_index FROM requests WHERE account_id = 'c1'").fetchall()
    assert row == [(2,)]
    reasons = sorted(r["reason"] for r in store.quarantined())
    assert reasons[0] == "empty prompt" and "unparseable timestamp" in reasons[1]


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    gz = tmp_path / "t.jsonl.gz"
    payload = "".join(json.dumps({**GOOD[0], "request_id": f"r{i}", "prompt": f"p {i} " * 20}) + "\n"
                      for i in range(2000))
    data = gzip.compress(payload.encode())
    gz.write_bytes(data[: len(data) // 2])
    store = Store(tmp_path / "store")
    s = ingest_files(store, [gz], batch_size=100)
    assert s.stored > 0 and s.quarantined == 1
    assert "unreadable rest of file" in next(store.quarantined())["reason"]


def test_missing_file_and_unknown_suffix_are_input_errors(tmp_path):
    store = Store(tmp_path / "store")
    with pytest.raises(InputError, match="no such file"):
        ingest_files(store, [tmp_path / "nope.jsonl"])
    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(InputError, match="unknown log container"):
        ingest_files(store, [bad])
