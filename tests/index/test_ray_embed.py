"""``--engine ray``: the same vectors, shards and index as the local job, resumable, never twice."""

import json

import numpy as np
import pytest

from promptcov.config import EmbedConfig, IndexConfig
from promptcov.index.embed import embed_pending
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.faiss_index import VectorIndex
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store

ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'promptcov[ray]' to test --engine ray")

from promptcov.index.ray_embed import embed_pending_ray  # noqa: E402

WORDS = ("grade rate answer rubric scale score explain reasoning step translate sonnet poem code python "
         "function bug fix refactor table chart data summarize article review pizza recipe travel plan").split()


def _log(path, n, start=0, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(start, start + n):
            words = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 15))))
            fh.write(json.dumps({"request_id": f"r{i}", "account_id": f"a{i % 17}", "timestamp": 1763284364 + i,
                                 "prompt": f"{words} #{i}"}) + "\n")
    return path


def _vectors(store: Store) -> dict[int, np.ndarray]:
    out = {}
    for _, ids, vecs in store.iter_shards():
        for i, v in zip(ids, vecs, strict=True):
            assert int(i) not in out, "a text was stored twice"
            out[int(i)] = v
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_matches_local_resumes_and_never_embeds_twice(tmp_path, ray_cluster):
    log = _log(tmp_path / "a.jsonl", 300)
    cfg = EmbedConfig(model="hashing-test-embedder", shard_size=64)
    with Store(tmp_path / "local") as local, Store(tmp_path / "ray") as remote:
        ingest_files(local, [log])
        ingest_files(remote, [log])
        embed_pending(local, HashingEmbedder(), shard_size=64)
        s = embed_pending_ray(remote, cfg, IndexConfig(), wave_shards=2)
        assert s.embedded == 300 and s.shards == 5 and s.index_count == 300
        a, b = _vectors(local), _vectors(remote)
        assert set(a) == set(b)
        cos = np.array([float(a[t] @ b[t]) for t in a])
        assert cos.min() >= 0.999
        assert embed_pending_ray(remote, cfg, IndexConfig()).embedded == 0  # nothing pending: nothing re-embedded
        ingest_files(remote, [_log(tmp_path / "b.jsonl", 40, start=300, seed=1)])
        s2 = embed_pending_ray(remote, cfg, IndexConfig())
        assert s2.embedded == 40 and s2.already == 300
        assert len(_vectors(remote)) == 340 == remote.count("embedded")
        ix = VectorIndex.load(remote.index_dir, model="hashing-test-embedder", dim=64)
        assert ix.ntotal == 340 and ix.shards == {int(p.stem.split("-")[1]) for p in remote.shard_paths()}
        assert remote.manifest()["model"] == "hashing-test-embedder"


def test_ray_moves_a_grown_store_to_the_compressed_tier(tmp_path, ray_cluster):
    """Past ``compressed_threshold`` the Ray job rebuilds to the compressed tier, as the local job does."""
    log = _log(tmp_path / "a.jsonl", 300)
    cfg = EmbedConfig(model="hashing-test-embedder", shard_size=64)
    small = IndexConfig(compressed_threshold=250, compressed_factory="IDMap2,IVF4,SQ8", rerank_k=10)
    with Store(tmp_path / "ray") as remote, Store(tmp_path / "local") as local:
        ingest_files(remote, [log])
        ingest_files(local, [log])
        s = embed_pending_ray(remote, cfg, small, wave_shards=2)
        want = embed_pending(local, HashingEmbedder(), shard_size=64, compressed_threshold=250,
                             compressed_factory="IDMap2,IVF4,SQ8", rerank_k=10)
        assert want.index_factory.endswith("SQ8")
        assert s.index_factory == want.index_factory and s.index_count == 300
        assert "SQ8" in VectorIndex.load(remote.index_dir, model="hashing-test-embedder", dim=64).factory


@pytest.mark.e2e
def test_ray_matches_local_with_the_real_model(tmp_path, ray_cluster, real_embedder):
    log = _log(tmp_path / "a.jsonl", 200)
    cfg = EmbedConfig(shard_size=64)
    with Store(tmp_path / "local") as local, Store(tmp_path / "ray") as remote:
        ingest_files(local, [log])
        ingest_files(remote, [log])
        assert real_embedder.name == cfg.model  # the default model, loaded once per session
        embed_pending(local, real_embedder, shard_size=64)
        embed_pending_ray(remote, cfg, IndexConfig())
        a, b = _vectors(local), _vectors(remote)
        assert set(a) == set(b) and min(float(a[t] @ b[t]) for t in a) >= 0.999


def test_cli_embed_engine_ray(tmp_path, ray_cluster, capsys):
    from promptcov.cli import main

    log = _log(tmp_path / "a.jsonl", 50)
    store = str(tmp_path / "s")
    assert main(["ingest", str(log), "--store", store, "-q"]) == 0
    assert main(["embed", "--engine", "ray", "--model", "hashing", "--store", store]) == 0
    assert "embed: 50 new text(s)" in capsys.readouterr().out
    assert main(["search", "--request-id", "r3", "--json", "-k", "1", "--store", store]) == 0
    assert json.loads(capsys.readouterr().out)[0]["request_id"] == "r3"
