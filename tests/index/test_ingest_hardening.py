"""Issue 9 items 2-4: no bad record costs the good ones around it; ids from content, not file names."""

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promptcov.errors import ManifestMismatchError
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store
from promptcov.io import write_json


def good(i, **kw):
    return {"account_id": f"acct-{i % 7}", "timestamp": 1763284364 + i, "prompt": f"good prompt number {i}", **kw}


def _jsonl(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _assert_all_good_stored(store, n_good):
    prompts = {r[0] for r in store.con.execute("SELECT prompt FROM texts").fetchall()}
    assert prompts == {f"good prompt number {i}" for i in range(n_good)}


def _assert_no_orphans(store):
    orphans = store.con.execute("SELECT count(*) FROM texts t ANTI JOIN requests r USING (text_id)").fetchall()
    assert orphans == [(0,)]
    (total,) = store.con.execute("SELECT coalesce(sum(n_requests), 0) FROM texts").fetchall()[0]
    assert total == store.count("requests")


BAD_LINES = {
    "lone surrogate in prompt": ('{"account_id": "a", "timestamp": 1763284364, "prompt": "x\\ud800y"}',
                                 "lone surrogate"),
    "lone surrogate in metadata": ('{"account_id": "a", "timestamp": 1763284364, "prompt": "ok", "tag": "\\udc00"}',
                                   "lone surrogate"),
    "deep nesting": ('{"account_id": "a", "timestamp": 1763284364, "prompt": "p", "m": '
                     + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
    "turn_index 2**40": (json.dumps(good(99, turn_index=2**40)), "out of range"),
    "turn_index 10**30": (json.dumps(good(99, turn_index=10**30)), "out of range"),
    "5000-digit number": ('{"account_id": "a", "timestamp": ' + "9" * 5000 + ', "prompt": "p"}', "invalid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_one_bad_record_never_loses_the_batch(tmp_path, case):
    line, reason = BAD_LINES[case]
    lines = [json.dumps(good(i)) for i in range(40)]
    lines.insert(17, line)
    store = Store(tmp_path / "s")
    s = ingest_files(store, [_jsonl(tmp_path / "l.jsonl", lines)], batch_size=1000)
    assert (s.read, s.stored, s.quarantined) == (41, 40, 1), s.line()
    _assert_all_good_stored(store, 40)
    (bad,) = store.quarantined()
    assert bad["line"] == 18 and reason in bad["reason"], bad["reason"]


def test_store_insert_isolates_rows_the_database_refuses(tmp_path):
    from promptcov.index.records import normalize_record, text_id

    store = Store(tmp_path / "s")
    rows = []
    for i in range(20):
        r = normalize_record(good(i), "f.jsonl", i + 1)
        r["text_id"] = text_id(r["system"], r["prompt"])
        rows.append(r)
    rows[5]["turn_index"] = 2**40  # past validation: the INTEGER column refuses it
    rows[13]["ts"] = "not a time"
    stored, dup, rejected = store.add_requests(rows)
    assert (stored, dup) == (18, 0)
    assert [i for i, _ in rejected] == [5, 13]
    assert all(reason.startswith("cannot be stored") for _, reason in rejected)
    assert store.count("requests") == 18
    _assert_no_orphans(store)


def test_parquet_cell_arrow_cannot_convert_quarantines_its_row_only(tmp_path):
    f = tmp_path / "t.parquet"
    ts = pa.array([1763284364, 253402300800 * 10, 1763284366], pa.timestamp("s"))  # year 10000+: no datetime
    pq.write_table(pa.table({"account_id": ["a", "b", "c"], "timestamp": ts, "prompt": ["p0", "p1", "p2"]}), f)
    store = Store(tmp_path / "s")
    s = ingest_files(store, [f])
    assert (s.read, s.stored, s.quarantined) == (3, 2, 1), s.line()
    (bad,) = store.quarantined()
    assert bad["line"] == 2 and "column 'timestamp' cannot be read" in bad["reason"]


def test_parquet_folder_files_with_different_schemas_in_any_order(tmp_path):
    def build(folder, names):
        folder.mkdir()
        pq.write_table(pa.table({"account_id": ["a", "b"], "timestamp": [1763284364, 1763284365],
                                 "prompt": ["p0", "p1"], "turn_index": [0, 1]}), folder / names[0])
        pq.write_table(pa.table({"account_id": ["c", "d"], "timestamp": ["2026-11-16T09:12:44Z", "x"],
                                 "prompt": ["p2", "p3"], "turn_index": ["zero", "one"],
                                 "model": ["m", "m"]}), folder / names[1])
        (folder / "README.txt").write_text("exported by the gateway team")
        (folder / "_SUCCESS").write_text("")
        return folder

    results = []
    for names in (["a.parquet", "b.parquet"], ["b.parquet", "a.parquet"]):
        folder = build(tmp_path / f"pq-{names[0]}", names)
        store = Store(tmp_path / f"s-{names[0]}")
        s = ingest_files(store, [folder])
        assert (s.read, s.stored, s.quarantined) == (4, 2, 2), s.line()
        assert sorted(p.rsplit("/", 1)[-1] for p in s.skipped_files) == ["README.txt", "_SUCCESS"]
        assert "2 non-Parquet file(s) skipped" in s.line()
        results.append(sorted(r[0] for r in store.con.execute("SELECT account_id FROM requests").fetchall()))
        reasons = sorted(q["reason"] for q in store.quarantined())
        assert "'turn_index' has the wrong type" in reasons[0] and "unparseable timestamp" in reasons[1]
    assert results[0] == results[1] == ["a", "b"]


def test_same_file_name_in_two_folders_both_stored_and_a_copy_is_duplicates(tmp_path):
    day1, day2 = tmp_path / "2026-11-16", tmp_path / "2026-11-17"
    day1.mkdir()
    day2.mkdir()
    _jsonl(day1 / "gateway.jsonl", [json.dumps(good(i)) for i in range(5)])
    _jsonl(day2 / "gateway.jsonl", [json.dumps(good(i + 5)) for i in range(5)])
    store = Store(tmp_path / "s")
    s = ingest_files(store, [day1 / "gateway.jsonl", day2 / "gateway.jsonl"])
    assert (s.stored, s.duplicates) == (10, 0), s.line()
    moved = tmp_path / "archive" / "renamed.jsonl"
    moved.parent.mkdir()
    moved.write_bytes((day1 / "gateway.jsonl").read_bytes())
    again = ingest_files(store, [moved])
    assert (again.stored, again.duplicates, again.quarantined) == (0, 5, 0)


def test_request_id_with_different_content_is_a_conflict_and_leaves_no_orphan_text(tmp_path):
    store = Store(tmp_path / "s")
    ingest_files(store, [_jsonl(tmp_path / "a.jsonl", [json.dumps(good(0, request_id="r-1"))])])
    lines = [json.dumps(good(0, request_id="r-1")),                                   # same content
             json.dumps(good(1, request_id="r-1", prompt="a different prompt")),     # conflict with store
             json.dumps(good(2, request_id="r-2")),
             json.dumps(good(3, request_id="r-2", prompt="another different one"))]  # conflict in batch
    s = ingest_files(store, [_jsonl(tmp_path / "b.jsonl", lines)])
    assert (s.read, s.stored, s.duplicates, s.quarantined) == (4, 1, 1, 2), s.line()
    conflicts = sorted(q["reason"] for q in store.quarantined())
    assert conflicts == ["conflict: request_id 'r-1' already stored with different content",
                         "conflict: request_id 'r-2' already stored with different content"]
    _assert_no_orphans(store)
    assert store.count("texts") == 2


def test_store_of_schema_1_is_refused_with_a_clear_error(tmp_path):
    Store(tmp_path / "s")
    write_json(tmp_path / "s" / "store.json", {"schema_version": 1, "model": None, "dim": None})
    with pytest.raises(ManifestMismatchError, match="schema version 1"):
        Store(tmp_path / "s")


def test_csv_with_byte_order_mark(tmp_path):
    f = tmp_path / "export.csv"
    with open(f, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["account_id", "timestamp", "prompt"])
        for i in range(3):
            w.writerow([f"acct-{i}", 1763284364 + i, f"good prompt number {i}"])
    store = Store(tmp_path / "s")
    s = ingest_files(store, [f])
    assert (s.stored, s.quarantined) == (3, 0), s.line()


@pytest.mark.parametrize("stray", [
    'acct-x,1763284364,"an unterminated quote',           # no quote follows: runs to the end of the file
    'acct-x,1763284364,"unterminated, then ""quoted""',    # escaped quotes inside, still open
])
@pytest.mark.parametrize("where", [3, 10, 29])
def test_csv_unterminated_quote_quarantines_one_line_and_resumes(tmp_path, stray, where):
    f = tmp_path / "q.csv"
    rows = [f"acct-{i % 7},{1763284364 + i},good prompt number {i}" for i in range(30)]
    rows[7] = 'acct-q,1763284364,"good prompt number 7"'  # a quoted good field after the stray quote
    rows[12] = 'acct-q,1763284364,"good prompt number 12, with a comma"'
    rows.insert(where, stray)
    f.write_text("account_id,timestamp,prompt\n" + "\n".join(rows) + "\n")
    store = Store(tmp_path / "s")
    s = ingest_files(store, [f])
    assert (s.read, s.stored, s.quarantined) == (31, 30, 1), s.line()
    (bad,) = store.quarantined()
    assert bad["line"] == where + 2 and "invalid CSV" in bad["reason"], bad
    assert store.con.execute("SELECT count(*) FROM texts WHERE prompt LIKE '%\n%'").fetchall() == [(0,)]


def test_csv_record_longer_than_the_line_limit_is_an_unterminated_quote(tmp_path):
    f = tmp_path / "q.csv"
    rows = ['acct-x,1763284364,"opened here'] + [f"acct-{i},{1763284364 + i},good prompt number {i}"
                                                  for i in range(50)]
    f.write_text("account_id,timestamp,prompt\n" + "\n".join(rows) + "\n")
    store = Store(tmp_path / "s")
    s = ingest_files(store, [f], max_record_lines=10)
    assert (s.stored, s.quarantined) == (50, 1)
    assert "more than 10 lines" in next(store.quarantined())["reason"]


def test_legit_multiline_csv_field_is_kept(tmp_path):
    f = tmp_path / "m.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["account_id", "timestamp", "prompt"])
        w.writerow(["a", 1763284364, "line one\nline two, with \"quotes\"\nline three"])
        w.writerow(["b", 1763284365, "single"])
    store = Store(tmp_path / "s")
    s = ingest_files(store, [f])
    assert (s.stored, s.quarantined) == (2, 0)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv"])
def test_invalid_utf8_is_replaced_and_counted(tmp_path, suffix):
    if suffix == ".csv":
        data = b"account_id,timestamp,prompt\n" + b"".join(
            b"a,%d,prompt %d" % (1763284364 + i, i) + (b" \xff\xfe bad bytes" if i % 3 == 0 else b"") + b"\n"
            for i in range(9))
    else:
        data = b"".join(b'{"account_id": "a", "timestamp": %d, "prompt": "prompt %d' % (1763284364 + i, i)
                        + (b" \xc3\x28 bad" if i % 3 == 0 else b"") + b'"}\n' for i in range(9))
    f = tmp_path / f"u{suffix}"
    f.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    store = Store(tmp_path / "s")
    s = ingest_files(store, [f])
    assert (s.stored, s.replaced) == (9, 3), s.line()
    assert "3 with invalid UTF-8" in s.line()
    assert store.con.execute("SELECT count(*) FROM texts WHERE prompt LIKE '%\uFFFD%'").fetchall() == [(3,)]
