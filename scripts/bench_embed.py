"""Benchmark: promptcov's ingest + embed pipeline against a bare ``SentenceTransformer.encode``.

Side by side in one run, on the same prompts (N real prompts from ``--data``, or the built-in
sample corpus when that folder is absent):

1. bare ``model.encode`` of the unique prompts (max_seq_length 128);
2. ``ingest`` + ``embed`` of a log holding each unique prompt once (the pipeline's overhead);
3. ``ingest`` + ``embed`` of a log with realistic repetition (Zipf-distributed repeats, as a
   sweep's retried and re-sent prompts): dedup means each distinct text is embedded once;
4. bare ``encode`` at max_seq_length 256: what the longer truncation costs;
5. the fast tier (``--model fast``, the static model distilled from the default): bare encode and
   ``ingest`` + ``embed`` of the unique log, with its speed-up over the default pipeline and, as
   a quick quality proxy, the mean share of each prompt's top-10 neighbours (cosine, among the
   N prompts) that the two models agree on;
6. with ``--ray``: ``ingest`` + ``embed --engine ray`` of the unique log with the default model
   (a local Ray cluster on this machine), against the local pipeline.

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
from promptcov.index.embedders import DEFAULT_MODEL, SentenceTransformerEmbedder, load_embedder
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store
from promptcov.io import write_json

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


def timed_pipeline(log: Path, embedder, workdir: Path, ray_model: str | None = None) -> tuple[float, int, int]:
    store = Store(workdir)
    t = time.perf_counter()
    ingest_files(store, [log])
    if ray_model is not None:
        from promptcov.config import EmbedConfig, IndexConfig
        from promptcov.index.ray_embed import embed_pending_ray

        s = embed_pending_ray(store, EmbedConfig(model=ray_model), IndexConfig())
    else:
        s = embed_pending(store, embedder)
    dt = time.perf_counter() - t
    n_req = store.count("requests")
    store.close()
    return dt, n_req, s.embedded


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's ``k`` nearest rows (cosine, itself excluded) that ``a`` and ``b`` agree on."""
    shared = []
    for start in range(0, len(a), 512):
        sa, sb = a[start:start + 512] @ a.T, b[start:start + 512] @ b.T
        for i in range(len(sa)):
            sa[i, start + i] = sb[i, start + i] = -np.inf
        na, nb = np.argsort(-sa, axis=1)[:, :k], np.argsort(-sb, axis=1)[:, :k]
        shared.extend(len(set(x) & set(y)) / k for x, y in zip(na, nb, strict=True))
    return float(np.mean(shared))


def fast_rows(prompts: list[str], default_vecs: np.ndarray, tmp: Path, rows: list, default_pipeline_s: float) -> dict:
    """Rows for the fast tier: bare encode and the pipeline; speed-up and top-10 agreement."""
    t = time.perf_counter()
    fast = load_embedder("fast")
    fast.embed(["warm up"])  # builds the static model on first use (cached afterwards)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    fast_vecs = fast.embed(prompts)
    bare = time.perf_counter() - t
    rows.append(("fast: bare encode, unique", len(prompts), len(prompts), bare))
    dt, n_req, n_emb = timed_pipeline(tmp / "unique.jsonl", fast, tmp / "s_fast")
    rows.append(("fast: promptcov ingest+embed, unique", n_req, n_emb, dt))
    return {"model": fast.name, "load_s": load_s, "speedup_vs_default_pipeline": default_pipeline_s / dt,
            "top10_overlap": top_k_overlap(np.asarray(default_vecs, np.float32), fast_vecs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder of real prompt sets (../shared/data)")
    ap.add_argument("--n", type=int, default=1000, help="unique prompts")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fast", action="store_true", help="skip the fast tier rows")
    ap.add_argument("--ray", action="store_true", help="add the --engine ray pipeline row (local Ray cluster)")
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
        default_vecs = st.encode(prompts * 1, batch_size=64, normalize_embeddings=True)
        bare_again = time.perf_counter() - t
        rows.append(("bare encode, unique, 128 tok (again)", len(prompts), len(prompts), bare_again))
        fast = None if args.no_fast else fast_rows(prompts, default_vecs, tmp, rows, dt)
        if args.ray:
            dt3, _, n_emb3 = timed_pipeline(tmp / "unique.jsonl", None, tmp / "s3", ray_model=args.model)
            rows.append(("ingest+embed --engine ray, unique", n1, n_emb3, dt3))
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
              "rows": out_rows, "cost_256_vs_128": bare256 / bare, "peak_rss_mb": peak, "fast": fast}
    if fast is not None:
        print(f"fast tier ({fast['model']}): pipeline {fast['speedup_vs_default_pipeline']:.1f}x the default "
              f"pipeline; top-10 neighbour agreement with the default model {fast['top10_overlap']:.1%} "
              f"(distil/load {fast['load_s']:.0f}s, not in the rates)")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
