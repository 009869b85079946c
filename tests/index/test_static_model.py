"""The fast tier: distilled, cached atomically, loaded through sentence-transformers, named precisely.

Unit tests distil a tiny randomly initialised BERT built here (seconds); the e2e test distils
the packaged default model (about 15-100 s on two cores).
"""

import numpy as np
import pytest

from promptcov.errors import InputError, ManifestMismatchError
from promptcov.index.embedders import DEFAULT_MODEL, load_embedder
from promptcov.index.static_model import StaticModelEmbedder, cache_root, parse_fast_name, source_hash
from promptcov.index.store import Store

WORDS = ("the a grade answer rubric scale of to using this pizza dough recipe best mitosis photo synthesis "
         "translate sonnet verse into rate response").split()


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    """A tiny BERT (random weights, 30-token vocabulary) saved as a Hugging Face model folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(d / "vocab.txt"))
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    out = d / "model"
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_parse_fast_names():
    assert parse_fast_name("fast", DEFAULT_MODEL) == (DEFAULT_MODEL, 256, None)
    assert parse_fast_name("fast:m:pca64:abc123", DEFAULT_MODEL) == ("m", 64, "abc123")
    assert parse_fast_name(DEFAULT_MODEL, DEFAULT_MODEL) is None
    assert parse_fast_name("fast:m:x:y", DEFAULT_MODEL) is None


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPTCOV_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("PROMPTCOV_CACHE")
    assert cache_root().parts[-2:] == (".cache", "promptcov")


def test_distil_once_cache_and_reload(tiny_source, tmp_path):
    e = StaticModelEmbedder("tiny", str(tiny_source), pca_dims=16, cache_dir=str(tmp_path))
    vecs = e.embed(["grade this answer", "best pizza dough recipe", ""])
    assert vecs.dtype == np.float32 and vecs.shape == (3, e.dim)
    assert np.allclose(np.linalg.norm(vecs[:2], axis=1), 1.0, atol=1e-5)
    assert e.name == f"fast:tiny:pca16:{source_hash(tiny_source)}"
    built = e.model_dir
    assert (built / "modules.json").exists() and built.parent == tmp_path / "models"
    assert not [p for p in built.parent.iterdir() if p.name.endswith(".tmp")]  # built in a temp dir, renamed
    stamp = (built / "modules.json").stat().st_mtime_ns
    again = StaticModelEmbedder("tiny", str(tiny_source), pca_dims=16, cache_dir=str(tmp_path))
    assert np.allclose(again.embed(["grade this answer"]), vecs[:1], atol=1e-6)
    assert (built / "modules.json").stat().st_mtime_ns == stamp  # loaded from the cache, not rebuilt


def test_a_different_source_is_refused(tiny_source, tmp_path):
    e = StaticModelEmbedder("tiny", str(tiny_source), pca_dims=16, expected_digest="000000000000",
                            cache_dir=str(tmp_path))
    with pytest.raises(InputError, match="hashes to"):
        e.embed(["x"])


def test_store_refuses_to_mix_the_fast_tier_with_the_full_model(tiny_source, tmp_path):
    e = StaticModelEmbedder("tiny", str(tiny_source), pca_dims=16, cache_dir=str(tmp_path))
    with Store(tmp_path / "store") as store:
        store.bind_model(e.name, e.dim)
        with pytest.raises(ManifestMismatchError, match="fast:tiny"):
            store.bind_model(DEFAULT_MODEL, 384)


@pytest.mark.e2e
def test_fast_tier_from_the_packaged_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTCOV_CACHE", str(tmp_path))
    e = load_embedder("fast")
    assert e.name.startswith(f"fast:{DEFAULT_MODEL}:pca256:") and e.dim == 256
    v = e.embed(["Grade this answer on a scale of 1 to 10", "Rate the response from 1 to 10", "pizza dough"])
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
    assert load_embedder(e.name).name == e.name  # the recorded name loads the same model back
