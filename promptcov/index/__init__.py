"""The client's ``index/`` folder: logs -> records -> the store (DuckDB + vector shards) -> FAISS.

- :mod:`~promptcov.index.readers`, :mod:`~promptcov.index.fields`, :mod:`~promptcov.index.records`,
  :mod:`~promptcov.index.ingest`: reading and normalising request logs, quarantining bad records;
- :mod:`~promptcov.index.store`, :mod:`~promptcov.index.shards`, :mod:`~promptcov.index.verify`,
  :mod:`~promptcov.index.snapshot`: the store, its checksummed vector shards, repair, and the
  published read-only snapshot;
- :mod:`~promptcov.index.embedders`, :mod:`~promptcov.index.static_model`, :mod:`~promptcov.index.embed`,
  :mod:`~promptcov.index.ray_embed`, :mod:`~promptcov.index.system_vectors`: models and the embed job;
- :mod:`~promptcov.index.faiss_index`, :mod:`~promptcov.index.search`: the vector index and lookups.
"""

__all__ = ["readers", "fields", "records", "ingest", "store", "shards", "verify", "snapshot", "embedders",
           "static_model", "embed", "ray_embed", "system_vectors", "faiss_index", "search"]
