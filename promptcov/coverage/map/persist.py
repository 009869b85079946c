"""The on-disk form of a fitted prompt map: plain ``.npy`` arrays, pickles of the reducer and
clusterer, and a JSON manifest (``map.json``) that is checked on load. Every file is written
atomically (temporary file, then ``os.replace``)."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from promptcov import __version__
from promptcov.errors import InputError, ManifestMismatchError
from promptcov.io import atomic_write, write_json

__all__ = ["MAP_FORMAT", "MAP_FORMAT_VERSION", "write_map_files", "read_map_files", "save_map", "load_map"]

log = logging.getLogger(__name__)

MAP_FORMAT = "promptcov-map"
MAP_FORMAT_VERSION = 1

_ARRAYS = ("centroids", "cluster_ids", "radius", "sample_index", "labels")
_PICKLES = ("reducer", "clusterer")


def write_map_files(
    directory: str | Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray], objects: dict[str, Any]
) -> None:
    """Write a fitted map into ``directory``: ``<name>.npy`` arrays, ``<name>.pkl`` pickles, ``map.json``.

    Every file is written atomically; the manifest goes last, so a reader that finds ``map.json``
    finds a complete map (a crash mid-save leaves the previous manifest and its files readable
    until they are overwritten one by one).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in _ARRAYS:
        with atomic_write(directory / f"{name}.npy", "wb") as fh:
            np.save(fh, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    for name in _PICKLES:
        with atomic_write(directory / f"{name}.pkl", "wb") as fh:
            pickle.dump(objects[name], fh, protocol=pickle.HIGHEST_PROTOCOL)
    write_json(directory / "map.json", {"format": MAP_FORMAT, "version": MAP_FORMAT_VERSION, **manifest})


def read_map_files(
    directory: str | Path, dim: int | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Read what :func:`write_map_files` wrote; check format, version and dimension.

    ``dim`` is the caller's embedding dimension (e.g. the store's model); a map fitted on vectors
    of another dimension raises :class:`~promptcov.errors.ManifestMismatchError` (a ``ValueError``)
    naming both sides. Only load maps you wrote yourself: the reducer and clusterer are pickles.
    """
    directory = Path(directory)
    path = directory / "map.json"
    if not path.is_file():
        raise InputError(f"{path}: no fitted map here; run `promptcov map` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if manifest.get("format") != MAP_FORMAT:
        raise InputError(f"{path}: not a promptcov map (format={manifest.get('format')!r})")
    if int(manifest.get("version", -1)) > MAP_FORMAT_VERSION:
        raise InputError(
            f"{path}: map format version {manifest.get('version')} is newer than this promptcov "
            f"reads ({MAP_FORMAT_VERSION}); upgrade promptcov or rerun `promptcov map`"
        )
    if dim is not None and int(manifest["dim"]) != int(dim):
        raise ManifestMismatchError(
            f"{path}: the map was fitted on {manifest['dim']}-dimensional vectors but the caller has "
            f"{dim}-dimensional ones; rerun `promptcov map` after changing the model"
        )
    arrays = {name: np.load(directory / f"{name}.npy", allow_pickle=False) for name in _ARRAYS}
    if arrays["centroids"].ndim != 2 or arrays["centroids"].shape[1] != int(manifest["dim"]):
        raise ManifestMismatchError(
            f"{directory / 'centroids.npy'}: centroids have shape {arrays['centroids'].shape} but "
            f"map.json says dim={manifest['dim']}"
        )
    objects = {}
    for name in _PICKLES:
        with open(directory / f"{name}.pkl", "rb") as fh:
            objects[name] = pickle.load(fh)
    return manifest, arrays, objects


def save_map(m: Any, directory: str | Path) -> None:
    """Persist the learned state of a fitted :class:`~promptcov.coverage.map.prompt_map.PromptMap`."""
    params = {k: v for k, v in m.get_params().items() if k not in ("reducer", "clusterer")}
    manifest = {
        "promptcov_version": __version__,
        "dim": m.dim_,
        "n_clusters": len(m.cluster_ids_),
        "n_fit": m.n_fit_,
        "params": params,
        "custom_reducer": m.reducer is not None,
        "custom_clusterer": m.clusterer is not None,
        "resolved_min_cluster_size": m.resolved_min_cluster_size_,
        "raw_labels": m.raw_labels_.tolist(),
        "sizes": m.sizes_.tolist(),
        "is_new": {str(k): v for k, v in m.is_new_.items()},
        "id_map": {str(k): v for k, v in m.id_map_.items()},
        "fit_seconds": m.fit_seconds_,
    }
    arrays = {
        "centroids": m.centroids_,
        "cluster_ids": m.cluster_ids_,
        "radius": m.radius_,
        "sample_index": m.sample_index_,
        "labels": m.labels_,
    }
    write_map_files(directory, manifest, arrays, {"reducer": m.reducer_, "clusterer": m.clusterer_})


def load_map(cls: type, directory: str | Path, dim: int | None = None) -> Any:
    """Rebuild a fitted ``cls`` (a PromptMap class) from what :func:`save_map` wrote."""
    manifest, arrays, objects = read_map_files(directory, dim)
    params = dict(manifest["params"])
    if manifest.get("custom_reducer"):
        params["reducer"] = objects["reducer"]
    if manifest.get("custom_clusterer"):
        params["clusterer"] = objects["clusterer"]
    m = cls(**params)
    m.centroids_ = np.ascontiguousarray(arrays["centroids"], dtype=np.float32)
    m.cluster_ids_ = arrays["cluster_ids"].astype(np.int64)
    m.radius_ = arrays["radius"].astype(np.float32)
    m.sample_index_ = arrays["sample_index"].astype(np.int64)
    m.labels_ = arrays["labels"].astype(np.int64)
    m.reducer_, m.clusterer_ = objects["reducer"], objects["clusterer"]
    m.raw_labels_ = np.asarray(manifest["raw_labels"], dtype=np.int64)
    m.sizes_ = np.asarray(manifest["sizes"], dtype=np.int64)
    m.resolved_min_cluster_size_ = int(manifest["resolved_min_cluster_size"])
    m.is_new_ = {int(k): bool(v) for k, v in manifest["is_new"].items()}
    m.id_map_ = {int(k): int(v) for k, v in manifest["id_map"].items()}
    m.dim_ = int(manifest["dim"])
    m.n_fit_ = int(manifest["n_fit"])
    m.fit_seconds_ = dict(manifest.get("fit_seconds", {}))
    return m
