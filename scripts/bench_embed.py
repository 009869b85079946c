"""Benchmark: promptcov's ingest + embed pipeline against a bare ``SentenceTransformer.encode``.

Side by side in one run, on the same prompts (N real prompts from ``--data``, or the built-in
sample corpus when that folder is absent):

1. bare ``model.encode`` of the unique prompts (max_seq_length 128);
2. ``ingest`` + ``embed`` of a log holding each unique prompt once (the pipeline's overhead);
3. ``ingest`` + ``embed`` of a log with realistic repetition (Zipf-distributed repeats, as a
   sweep's retried and re-sent prompts): dedup means each distinct text is embedded once;
4. bare ``encode`` at max_seq_length 256: what the longer truncation costs.

Prints prompts/s and ratios and writes JSON. Peak memory is the process's max RSS.

    python scripts/bench_embed.py --data ../shared/data --n 1000
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import resource
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from promptcov.index.embed import embed_pending
from promptcov.index.embedders import DEFAULT_MODEL, SentenceTransformerEmbedder
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store

CORPUS = Path(__file__).resolve().parents[1] / "promptcov" / "data" / "corpus"


def load_prompts(data: Path | None, n: int, seed: int) -> list[str]:
    prompts: list[str] = []
    if data is not None and data.exists():
        for f in sorted(data.glob("*.jsonl.gz")):
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                prompts.extend(json.loads(line)["prompt"] for line in fh)
    else:
        for f in sorted(CORPUS.glob("*.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                text = rec.get("prompt") or rec.get("task") or rec.get("text")
                if text:
                    prompts.append(text)
    prompts = sorted(set(p for p in prompts if p.strip()))
    random.Random(seed).shuffle(prompts)
    return prompts[:n]


def write_log(path: Path, prompts: list[str], repeats: list[int]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for i, (p, r) in enumerate(zip(prompts, repeats, strict=True)):
            for j in range(r):
                fh.write(json.dumps({"request_id": f"r{i}-{j}", "account_id": f"a{(i + j) % 97}",
                                     "timestamp": 1763284364 + n, "prompt": p}) + "\n")
                n += 1
    return n


def timed_pipeline(log: Path, embedder, workdir: Path) -> tuple[float, int, int]:
    store = Store(workdir)
    t = time.perf_counter()
    ingest_files(store, [log])
    s = embed_pending(store, embedder)
    dt = time.perf_counter() - t
    n_req = store.count("requests")
    store.close()
    return dt, n_req, s.embedded


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder of real prompt sets (../shared/data)")
    ap.add_argument("--n", type=int, default=1000, help="unique prompts")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("reports/bench/bench_embed.json"))
    args = ap.parse_args(argv)
    prompts = load_prompts(args.data, args.n, args.seed)
    rng = np.random.default_rng(args.seed)
    repeats = np.minimum(rng.zipf(2.2, len(prompts)), 50).tolist()
    emb128 = SentenceTransformerEmbedder(args.model, max_seq_length=128, device=args.device)
    emb256 = SentenceTransformerEmbedder(args.model, max_seq_length=256, device=args.device)
    emb128.embed(["warm up"])
    emb256.embed(["warm up"])
    st = emb128._load()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        st.encode(prompts, batch_size=64, normalize_embeddings=True)
        bare = time.perf_counter() - t
        rows.append(("bare encode, unique, 128 tok", len(prompts), len(prompts), bare))
        n1 = write_log(tmp / "unique.jsonl", prompts, [1] * len(prompts))
        dt, n_req, n_emb = timed_pipeline(tmp / "unique.jsonl", emb128, tmp / "s1")
        rows.append(("promptcov ingest+embed, unique", n1, n_emb, dt))
        n2 = write_log(tmp / "repeat.jsonl", prompts, repeats)
        dt2, n_req2, n_emb2 = timed_pipeline(tmp / "repeat.jsonl", emb128, tmp / "s2")
        rows.append(("promptcov ingest+embed, repeated log", n2, n_emb2, dt2))
        t = time.perf_counter()
        emb256._load().encode(prompts, batch_size=64, normalize_embeddings=True)
        bare256 = time.perf_counter() - t
        rows.append(("bare encode, unique, 256 tok", len(prompts), len(prompts), bare256))
        t = time.perf_counter()
        st.encode(prompts * 1, batch_size=64, normalize_embeddings=True)
        bare_again = time.perf_counter() - t
        rows.append(("bare encode, unique, 128 tok (again)", len(prompts), len(prompts), bare_again))
    bare_rate = len(prompts) / ((bare + bare_again) / 2)
    print(f"{'run':<40} {'requests':>9} {'embedded':>9} {'seconds':>8} {'req/s':>8} {'vs bare':>8}")
    out_rows = []
    for name, n_req, n_emb, dt in rows:
        rate = n_req / dt
        print(f"{name:<40} {n_req:>9} {n_emb:>9} {dt:>8.1f} {rate:>8.1f} {rate / bare_rate:>8.2f}")
        out_rows.append({"run": name, "requests": n_req, "embedded": n_emb, "seconds": dt, "requests_per_s": rate,
                         "ratio_vs_bare": rate / bare_rate})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lengths = [len(p) for p in prompts]
    print(f"prompts: {len(prompts)} unique, median {int(np.median(lengths))} chars; repeated log: {n2} requests; "
          f"256 vs 128 tokens costs {bare256 / bare:.2f}x; peak RSS {peak:.0f} MB")
    result = {"benchmark": "embed", "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {platform.processor() or ''}", "model": args.model,
              "device": args.device or "default", "source": str(args.data or "sample corpus"),
              "rows": out_rows, "cost_256_vs_128": bare256 / bare, "peak_rss_mb": peak}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(result, indent=2))
    tmp_out.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
