"""The client's ``coverage/`` folder: from vectors to maps, metrics, groups and scores.

Rooms, in the order the jobs use them:

- :mod:`~promptcov.coverage.map`: the prompt-space map (UMAP + HDBSCAN on a sample, stable
  cluster ids, cluster naming);
- :mod:`~promptcov.coverage.areas`: the capability taxonomy, request-shape markers and the area
  assigner;
- :mod:`~promptcov.coverage.templates`: slot-masked skeletons, MinHash/LSH template detection and
  popularity;
- :mod:`~promptcov.coverage.frame`: one scoring window as aligned arrays (what every room below
  reads);
- :mod:`~promptcov.coverage.metrics`: pure numpy per-account and per-pool metrics;
- :mod:`~promptcov.coverage.linking`: account linking into coordinated groups;
- :mod:`~promptcov.coverage.scoring`: scores, calibration, reasons, pivots and the detector that
  orchestrates them.
"""

__all__ = ["map", "areas", "templates", "frame", "metrics", "linking", "scoring"]
