"""Fuzz campaign for the ingest job: many good records mixed with hostile ones, every container.

For each container (JSONL, JSONL.gz, CSV, CSV.gz, Parquet folder) and each round, it writes a
log in which good records (random Unicode text, explicit or derived request ids) are mixed with
bad ones: random bytes, random JSON values and record-like objects with wrong types, nesting up
to 100,000 levels, integers up to 10**400 and 5,000 digits, lone surrogates, records re-encoded
in UTF-16/UTF-32/Latin-1, stray and unterminated CSV quotes, Parquet cells Arrow cannot convert,
non-Parquet files and a damaged ``.parquet`` file. Then it ingests the log and counts:

- ``crashes``: ingest jobs that raised (any exception is a crash);
- ``good_lost``: good records not stored under their request id (prompt and id checked);
- ``unaccounted``: records for which ``read != stored + duplicates + quarantined``.

The target is 0, 0, 0. Prints a table and writes JSON (default ``reports/bench/fuzz_ingest.json``).
The generator is written here (not tuned on real data): figures are development figures.

    python scripts/fuzz_ingest.py --records 20000 --seed 0
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import platform
import random
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from promptcov.index.ingest import ingest_files
from promptcov.index.records import KNOWN_FIELDS
from promptcov.index.store import Store
from promptcov.io import write_json

CONTAINERS = ("jsonl", "jsonl.gz", "csv", "csv.gz", "parquet")
_RANGES = [(0x20, 0x7E), (0xA0, 0x2FF), (0x370, 0x52F), (0x600, 0x6FF), (0x4E00, 0x4FFF), (0x1F300, 0x1F6FF),
           (0x0, 0x1F), (0x202A, 0x202E), (0xFFF0, 0xFFFF), (0xE000, 0xE0FF)]


def rand_text(rng: random.Random, n: int, surrogates: bool = False) -> str:
    out = []
    for _ in range(n):
        lo, hi = rng.choice(_RANGES)
        out.append(chr(rng.randint(lo, hi)))
    if surrogates:
        out.insert(rng.randint(0, len(out)), chr(rng.randint(0xD800, 0xDFFF)))
    return "".join(out)


def rand_json(rng: random.Random, depth: int = 0):
    k = rng.randint(0, 9 if depth < 3 else 5)
    if k == 0:
        return None
    if k == 1:
        return rng.random() < 0.5
    if k == 2:
        return rng.choice([0, -1, 2**31, 2**40, 2**63, 10**30, -(10**30), rng.randint(-(10**9), 10**9)])
    if k == 3:
        return rng.choice([0.5, -1e308, 1e308, float("nan"), float("inf")])
    if k in (4, 5):
        return rand_text(rng, rng.randint(0, 12), surrogates=rng.random() < 0.1)
    if k in (6, 7):
        return [rand_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(KNOWN_FIELDS + ("x", "meta", "")): rand_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def good_record(rng: random.Random, i: int, tag: str) -> dict:
    rec = {"account_id": "acct-" + rand_text(rng, rng.randint(1, 10)),
           "timestamp": rng.choice([rng.randint(0, 4_000_000_000), rng.randint(10**12, 4 * 10**12),
                                    "2026-11-16T09:12:44Z", "2026-11-16T10:12:44.5+01:00"]),
           "prompt": f"good {tag} {i}: " + rand_text(rng, rng.randint(0, 80))}
    if rng.random() < 0.5:
        rec["request_id"] = f"good-{tag}-{i}"
    if rng.random() < 0.3:
        rec["turn_index"] = rng.randint(0, 2**31 - 1)
    if rng.random() < 0.3:
        rec["messages"] = [{"role": "system", "content": rand_text(rng, 10)}, {"role": "user", "content": "x"}]
    return rec


def bad_line(rng: random.Random) -> bytes:
    k = rng.randint(0, 7)
    if k == 0:
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 100)))
    if k == 1:
        return json.dumps(rand_json(rng)).encode()
    if k == 2:
        d = rng.choice([200, 1000, 5000, 100_000])
        return ('{"account_id": "a", "timestamp": 1, "prompt": "p", "x": ' + "[" * d + "]" * d + "}").encode()
    if k == 3:
        n = rng.choice(["1" + "0" * 400, "9" * 5000, str(2**63), str(2**40)])
        return ('{"account_id": "a", "timestamp": 1, "prompt": "p", "turn_index": ' + n + "}").encode()
    if k == 4:
        return json.dumps({"account_id": "a", "timestamp": 1, "prompt": rand_text(rng, 5, surrogates=True)}).encode()
    if k == 5:
        rec = {"account_id": "é", "timestamp": 1, "prompt": rand_text(rng, 10)}
        return json.dumps(rec, ensure_ascii=False).encode(rng.choice(["utf-16", "utf-32", "latin-1"]), "replace")
    if k == 6:
        return rng.choice([b'"', b'a,1,"unterminated', b'x,"y""', b'"",,,', b"\xef\xbb\xbf", b"\x00,\x00", b",,,,,,,,"])
    base = rand_json(rng, 2)
    base = base if isinstance(base, dict) else {}
    return json.dumps({**base, "account_id": rand_json(rng, 2), "timestamp": rand_json(rng, 2)}).encode()


def _csv_row(rec: dict, cols: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow([json.dumps(rec[c]) if isinstance(rec.get(c), list) else rec.get(c, "") for c in cols])
    return buf.getvalue().encode("utf-8")


def write_log(rng: random.Random, folder: Path, container: str, n_good: int, tag: str) -> tuple[Path, list[dict]]:
    goods = [good_record(rng, i, tag) for i in range(n_good)]
    if container == "parquet":
        return _write_parquet(rng, folder, goods), goods
    cols = ["account_id", "timestamp", "prompt", "request_id", "turn_index", "messages"]
    chunks = [b"account_id,timestamp,prompt,request_id,turn_index,messages\r\n"] if container.startswith("csv") else []
    for rec in goods:
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            chunks.append(bad_line(rng) + b"\n")
        if container.startswith("csv"):
            chunks.append(_csv_row(rec, cols))
        else:
            chunks.append(json.dumps(rec, ensure_ascii=rng.random() < 0.5).encode("utf-8") + b"\n")
    data = b"".join(chunks)
    path = folder / f"log.{container}"
    path.write_bytes(gzip.compress(data) if container.endswith(".gz") else data)
    return path, goods


def _write_parquet(rng: random.Random, folder: Path, goods: list[dict]) -> Path:
    out = folder / "pq"
    out.mkdir()
    for g in goods:
        g["timestamp"] = rng.randint(0, 4_000_000_000)
        g.pop("messages", None)
    parts = [goods[i::3] for i in range(3)]
    for k, part in enumerate(parts):
        if not part:
            continue
        n_bad = rng.randint(1, 4)
        tbl = {"account_id": [g["account_id"] for g in part] + [None] * n_bad,
               "timestamp": pa.array([g["timestamp"] for g in part] + [253402300800 * 10] * n_bad, pa.timestamp("s")),
               "prompt": [g["prompt"] for g in part] + ["bad"] * n_bad,
               "request_id": [g.get("request_id") for g in part] + [None] * n_bad}
        if k == 1:  # another schema in another file: turn_index as text, an extra column
            tbl["turn_index"] = [None] * (len(part) + n_bad)
            tbl["model"] = ["m"] * (len(part) + n_bad)
        else:
            tbl["turn_index"] = pa.array([g.get("turn_index") for g in part] + [2**40] * n_bad, pa.int64())
        pq.write_table(pa.table(tbl), out / f"part-{k}.parquet")
    (out / "README.txt").write_text("exported by the gateway team")
    (out / "zz-damaged.parquet").write_bytes(bytes(rng.randint(0, 255) for _ in range(200)))
    return out


def check(store: Store, summary, goods: list[dict]) -> tuple[int, int]:
    """``(good records lost, 1 if the counts do not add up)``."""
    prompts = {r[0] for r in store.con.execute("SELECT prompt FROM texts").fetchall()}
    ids = {r[0] for r in store.con.execute("SELECT request_id FROM requests").fetchall()}
    lost = sum(1 for g in goods if g["prompt"] not in prompts or ("request_id" in g and g["request_id"] not in ids))
    bad_sum = int(summary.read != summary.stored + summary.duplicates + summary.quarantined
                  or summary.stored != store.count("requests"))
    return lost, bad_sum


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=20_000, help="good records in all (default 20000)")
    ap.add_argument("--per-log", type=int, default=500, help="good records per log (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("reports/bench/fuzz_ingest.json"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = {c: {"logs": 0, "records_read": 0, "good_records": 0, "stored": 0, "quarantined": 0, "crashes": 0,
                "good_lost": 0, "unaccounted": 0} for c in CONTAINERS}
    t0 = time.time()
    done, n = 0, 0
    while done < args.records:
        container = CONTAINERS[n % len(CONTAINERS)]
        n_good = min(args.per_log, args.records - done)
        row = rows[container]
        with tempfile.TemporaryDirectory() as tmp:
            path, goods = write_log(rng, Path(tmp), container, n_good, f"{n}")
            store = Store(Path(tmp) / "store")
            try:
                s = ingest_files(store, [path], batch_size=rng.choice([7, 500, 5000]))
                lost, bad_sum = check(store, s, goods)
                row["records_read"] += s.read
                row["stored"] += s.stored
                row["quarantined"] += s.quarantined
                row["good_lost"] += lost
                row["unaccounted"] += bad_sum
            except Exception:  # noqa: BLE001 - a crash is what this script counts
                row["crashes"] += 1
                row["good_lost"] += len(goods)
                traceback.print_exc()
            finally:
                store.close()
        row["logs"] += 1
        row["good_records"] += n_good
        done += n_good
        n += 1
    total = {k: sum(r[k] for r in rows.values()) for k in next(iter(rows.values()))}
    print(f"{'container':<10} {'logs':>5} {'read':>8} {'good':>7} {'stored':>7} {'quarant.':>8} "
          f"{'crashes':>7} {'lost':>5} {'unacc.':>6}")
    for name, r in [*rows.items(), ("total", total)]:
        print(f"{name:<10} {r['logs']:>5} {r['records_read']:>8} {r['good_records']:>7} {r['stored']:>7} "
              f"{r['quarantined']:>8} {r['crashes']:>7} {r['good_lost']:>5} {r['unaccounted']:>6}")
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
              "python": platform.python_version(), "seed": args.seed, "seconds": round(time.time() - t0, 1),
              "by_container": rows, "total": total,
              "note": "development figures: generator written for this script, not real gateway logs"}
    write_json(args.out, result)
    print(f"wrote {args.out} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
