"""Damaged stores: a truncated, bit-flipped or deleted index or shard is detected and repaired."""

import json

import numpy as np
import pytest

from promptcov.cli import main
from promptcov.errors import DamagedStoreError
from promptcov.index.embed import embed_pending, pending_count
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.faiss_index import VectorIndex
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store
from promptcov.index.verify import verify_store

N_TEXTS = 45
EMB = HashingEmbedder(name="hashing")  # what `--model hashing` loads


def _records(n=120):
    return [{"request_id": f"r{i}", "account_id": f"a{i % 5}", "timestamp": 1763284364 + i,
             "prompt": f"question number {i % N_TEXTS} about topic {i % N_TEXTS * 7}" + (" x" * (i % N_TEXTS))}
            for i in range(n)]


@pytest.fixture
def store(tmp_path, write_jsonl):
    log = write_jsonl("log.jsonl", [json.dumps(r) for r in _records()])
    s = Store(tmp_path / "store")
    ingest_files(s, [log])
    embed_pending(s, EMB, shard_size=10)  # 5 shards: 10, 10, 10, 10, 5 texts
    return s


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _flip(path, at=None):
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if at is None else at
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def _consistent(store):
    """Every text has exactly one vector, in shards and in the index."""
    ids = np.concatenate([i for _, i, _ in store.iter_shards()])
    assert len(ids) == len(np.unique(ids)) == store.count("texts") == store.count("embedded")
    assert pending_count(store) == 0
    ix = VectorIndex.load(store.index_dir, checksum_max_bytes=None)
    assert ix.ntotal == store.count("texts") and ix.shards == set(store.registered_shards())
    return ix


def _nearest_is_self(store, ix):
    tid = int(store.con.execute("SELECT min(text_id) FROM texts").fetchall()[0][0])
    _, vecs = store.get_vectors([tid])
    sims, ids = ix.search(vecs, k=1)
    assert int(ids[0, 0]) == tid and sims[0, 0] > 0.99


def test_truncated_index_is_detected_and_embed_rebuilds_it(store):
    _truncate(store.index_dir / "index.faiss")
    with pytest.raises(DamagedStoreError, match="index damaged: .*index.faiss has .* bytes.*verify --repair"):
        VectorIndex.load(store.index_dir)
    summary = embed_pending(store, EMB, shard_size=10)
    assert summary.embedded == 0 and summary.index_count == N_TEXTS
    _nearest_is_self(store, _consistent(store))


def test_truncated_index_without_size_in_manifest_is_one_error_not_a_faiss_traceback(store):
    """Stores written before checksums: FAISS's own read error becomes DamagedStoreError."""
    m = json.loads((store.index_dir / "manifest.json").read_text())
    m.pop("bytes"), m.pop("sha256")
    (store.index_dir / "manifest.json").write_text(json.dumps(m))
    _truncate(store.index_dir / "index.faiss")
    with pytest.raises(DamagedStoreError, match="index damaged: .* cannot be read"):
        VectorIndex.load(store.index_dir)


def test_bit_flipped_index_fails_its_checksum(store):
    path = store.index_dir / "index.faiss"
    _flip(path, at=path.stat().st_size - 400)  # inside the stored vectors: FAISS would read it happily
    with pytest.raises(DamagedStoreError, match="sha256"):
        VectorIndex.load(store.index_dir)
    # above the checksum limit only the size is checked at load; `verify` reads every byte
    VectorIndex.load(store.index_dir, checksum_max_bytes=0)
    report = verify_store(store)
    assert report.index == "damaged" and not report.healthy
    assert embed_pending(store, EMB).embedded == 0
    _nearest_is_self(store, _consistent(store))


def test_truncated_shard_is_forgotten_and_re_embedded(store):
    _truncate(store.shard_path(2))
    with pytest.raises(DamagedStoreError, match=r"shard-000002.npz is damaged \(\d+ bytes, \d+ recorded\).*promptcov embed"):
        list(store.iter_shards())  # what the map job reads: an error naming the shard, not a zip traceback
    summary = embed_pending(store, EMB, shard_size=10)
    assert summary.forgotten == 1 and summary.embedded == 10
    _nearest_is_self(store, _consistent(store))


def test_bit_flipped_shard_is_caught_on_read_and_by_embed(store):
    _flip(store.shard_path(1), at=store.shard_path(1).stat().st_size - 50)
    with pytest.raises(DamagedStoreError, match="shard-000001.npz is damaged .*sha256"):
        store.get_vectors(store.con.execute("SELECT text_id FROM embedded WHERE shard = 1").fetchnumpy()["text_id"])
    summary = embed_pending(store, EMB, shard_size=10)
    assert summary.forgotten == 1 and summary.embedded == 10
    _consistent(store)


def test_deleted_shard_does_not_loop(store):
    """Was: search said "run embed" and embed said "0 new"."""
    store.shard_path(3).unlink()
    tid = store.con.execute("SELECT text_id FROM embedded WHERE shard = 3 LIMIT 1").fetchall()[0][0]
    with pytest.raises(DamagedStoreError, match="shard-000003.npz is missing"):
        store.get_vectors([tid])
    summary = embed_pending(store, EMB, shard_size=10)
    assert summary.forgotten == 1 and summary.embedded == 10
    ids, _ = store.get_vectors([tid])
    assert list(ids) == [tid]
    _consistent(store)


def test_shard_without_checksum_from_an_older_store_is_adopted(store):
    store.con.execute("DELETE FROM shards").fetchall()
    store.close()
    again = Store(store.path)
    assert embed_pending(again, EMB).embedded == 0
    assert again.count("shards") == 5
    _consistent(again)


def test_verify_reports_and_repairs(store, tmp_path, capsys):
    path = str(store.path)
    store.close()
    assert main(["verify", "--store", path]) == 0
    assert "5 shard(s) ok, 0 damaged, 0 missing" in capsys.readouterr().out
    s = Store(path)
    _truncate(s.shard_path(0))
    s.shard_path(4).unlink()
    _flip(s.index_dir / "index.faiss", at=(s.index_dir / "index.faiss").stat().st_size - 400)
    s.close()
    assert main(["verify", "--store", path]) == 1
    out = capsys.readouterr().out
    assert "3 shard(s) ok, 1 damaged, 1 missing" in out and "index damaged" in out
    assert "shard 000000 damaged" in out and "shard 000004 missing" in out and "damage remains" in out
    assert main(["verify", "--repair", "--store", path]) == 0
    out = capsys.readouterr().out
    assert "forgot 2 damaged or missing shard(s); their 15 text(s)" in out
    assert "rebuilt the index from 3 shard(s)" in out and "15 text(s) have no vector yet" in out
    assert main(["verify", "--store", path]) == 0
    assert "index ok" in capsys.readouterr().out
    assert main(["embed", "--store", path, "--model", "hashing", "-q"]) == 0
    with Store(path) as s:
        _nearest_is_self(s, _consistent(s))


def test_verify_finds_vectors_without_texts_duplicates_and_unrecorded_shards(store):
    orphan = int(store.con.execute("SELECT text_id FROM embedded WHERE shard = 0 LIMIT 1").fetchall()[0][0])
    store.con.execute("DELETE FROM texts WHERE text_id = ?", [orphan]).fetchall()
    ids4, vecs4 = store.read_shard(4)
    ids1, vecs1 = store.read_shard(1)
    store.con.execute("DELETE FROM embedded WHERE shard = 4").fetchall()  # as if killed before recording
    store.con.execute("DELETE FROM shards WHERE shard = 4").fetchall()
    # shard 5 holds shard 4's texts and, a second time, three texts recorded in shard 1
    store.write_shard(5, np.concatenate([ids4, ids1[:3]]), np.concatenate([vecs4, vecs1[:3]]))
    report = verify_store(store)
    assert (report.vectors_without_texts, report.duplicate_vectors, report.shards_unrecorded) == (1, 3, 1)
    assert not report.healthy
    fixed = verify_store(store, repair=True)
    assert fixed.healthy, fixed.lines()
    assert verify_store(store).healthy
    assert not store.shard_path(4).exists()  # every text in it is recorded in shard 5
    ids = np.concatenate([i for _, i, _ in store.iter_shards()])
    assert len(ids) == len(np.unique(ids)) == N_TEXTS - 1 == store.count("embedded")
    assert VectorIndex.load(store.index_dir).ntotal == N_TEXTS - 1


def test_unrecorded_shard_with_texts_recorded_elsewhere_is_dropped_not_doubled(store):
    ids, vecs = store.read_shard(0)
    store.con.execute("DELETE FROM shards WHERE shard = 0").fetchall()
    (store.vectors_dir / "shard-000009.npz").write_bytes(store.shard_path(0).read_bytes())
    assert store.reconcile_shards() == 0
    assert not (store.vectors_dir / "shard-000009.npz").exists()
    assert embed_pending(store, EMB).embedded == 0
    _consistent(store)
