"""The map job: cluster the prompt space, name each cluster's capability area, find templates.

Reads the store, hands arrays to the pure coverage modules, writes the ``text_map``,
``clusters``, ``templates`` and ``map_points`` tables (docs/DESIGN.md):

1. fit :class:`~promptcov.coverage.map.prompt_map.PromptMap` (UMAP + HDBSCAN) on a seeded sample of
   distinct texts — never on everything;
2. keep cluster ids stable against the previous map (centroid matching) and mark new clusters;
3. stream every vector shard through ``predict`` and the capability assigner;
4. detect shared templates (MinHash/LSH over slot-masked skeletons) and their popularity;
5. describe each cluster: size, accounts, top-5 share, c-TF-IDF keywords, exemplars;
6. project a sample to 2-D for the report's map.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from promptcov.config import Config, MapConfig
from promptcov.coverage.map.prompt_map import PromptMap
from promptcov.errors import InputError
from promptcov.index.snapshot import publish
from promptcov.index.store import Store
from promptcov.index.system_vectors import combine, system_vectors
from promptcov.io import write_json
from promptcov.pipeline.progress import Progress, ensure_progress
from promptcov.protocols import Embedder

__all__ = ["MapSummary", "run_map", "TEXT_MAP_SCHEMA"]

log = logging.getLogger(__name__)


@dataclass
class MapSummary:
    n_texts: int = 0
    sample: int = 0
    clusters: int = 0
    new_clusters: int = 0
    noise_share: float = 0.0
    templates: int = 0
    areas: dict = field(default_factory=dict)
    version: int = 0
    seed: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        top = ", ".join(f"{a} {n}" for a, n in sorted(self.areas.items(), key=lambda kv: -kv[1])[:6])
        return (f"map v{self.version}: {self.clusters} clusters ({self.new_clusters} new) from a sample of "
                f"{self.sample} of {self.n_texts} texts, {self.noise_share:.0%} noise, {self.templates} templates; "
                f"requests by area: {top} (seed {self.seed}, {self.seconds:.0f}s)")


def _texts_for(store: Store, ids: np.ndarray) -> tuple[list[str], list[str]]:
    rows = store.texts_for(ids)
    return [r[0] for r in rows], [r[1] for r in rows]


def _previous(store: Store, dim: int):
    meta_path = store.map_dir / "promptcov_map.json"
    if not meta_path.exists():
        return None, 0, -1
    meta = json.loads(meta_path.read_text())
    prev = PromptMap.load(store.map_dir / "model", dim=dim)
    return prev, int(meta["version"]), int(meta.get("max_id", -1))


TEXT_MAP_SCHEMA = pa.schema([
    ("text_id", pa.int64()), ("cluster_id", pa.int64()), ("capability", pa.string()),
    ("capability_score", pa.float64()), ("marker", pa.string())])


def run_map(store: Store, config: Config, progress: Progress | None = None, *,
            embedder: Embedder | None = None) -> MapSummary:
    """Fit the map on a sample, assign every text, and write the map tables.

    ``embedder`` must be the store's model (it embeds the taxonomy's training texts); by default it
    is loaded from the store's manifest.
    """
    from promptcov.pipeline.embed_job import job_embedder

    progress = ensure_progress(progress)
    cfg = config.map
    t0 = time.perf_counter()
    store.reconcile_shards()
    manifest = store.manifest()
    if manifest.get("model") is None or store.count("embedded") == 0:
        raise InputError(f"store {store.path} has no vectors; run `promptcov embed` first")
    embedder = embedder if embedder is not None else job_embedder(store, config)
    if embedder.name != manifest["model"]:
        raise InputError(f"store was embedded with {manifest['model']!r}, not {embedder.name!r}")
    n_texts = store.count("embedded")
    summary = MapSummary(n_texts=n_texts, seed=cfg.seed)
    sample_ids, sample_vecs = _sample(store, cfg, n_texts)
    sample_vecs = _with_systems(store, embedder, sample_ids, sample_vecs)
    pmap = PromptMap(sample_size=len(sample_ids), n_components=cfg.n_components, n_neighbors=cfg.n_neighbors,
                     min_cluster_size=cfg.min_cluster_size, assign=cfg.assign, seed=cfg.seed)
    log.info("fitting the map on %d of %d distinct texts (seed %d)", len(sample_ids), n_texts, cfg.seed)
    pmap.fit(sample_vecs)
    prev, prev_version, max_id = _previous(store, int(manifest["dim"]))
    if prev is not None and len(prev.cluster_ids_):
        pmap.match_previous(prev.centroids_, prev.cluster_ids_, next_id=max_id + 1)
    else:  # a first map has no "new" regions; a map after an empty one has only new ones
        pmap.mark_new(prev is not None)
    summary.version, summary.sample = prev_version + 1, len(sample_ids)
    text_map = _assign_texts(store, cfg, pmap, embedder, n_texts, progress)
    det = _templates(store, text_map, summary.version)
    summary.templates = len(det.templates_)
    _write_templates(store, det)
    _write_clusters(store, pmap, sample_ids, sample_vecs, summary.version)
    _write_points(store, pmap, sample_ids, sample_vecs, cfg)
    _persist(store, pmap, cfg, summary, max_id)
    labels_all = text_map.column("cluster_id").to_numpy()
    summary.clusters = len(pmap.cluster_ids_)
    summary.new_clusters = sum(1 for v in pmap.is_new_.values() if v)
    summary.noise_share = float(np.mean(labels_all < 0)) if len(labels_all) else 0.0
    summary.areas = dict(store.con.execute(
        "SELECT m.capability, count(*) FROM requests r JOIN text_map m USING (text_id) GROUP BY 1").fetchall())
    publish(store)
    summary.seconds = time.perf_counter() - t0
    return summary


def _sample(store: Store, cfg: MapConfig, n_texts: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of distinct embedded texts and their vectors, sorted by text id."""
    n_sample = min(cfg.sample_size, n_texts)
    rng = np.random.default_rng(cfg.seed)
    all_ids = store.con.execute("SELECT text_id FROM embedded ORDER BY text_id").fetchnumpy()["text_id"]
    sample_ids = np.sort(rng.choice(all_ids, n_sample, replace=False))
    del all_ids
    sample_ids, sample_vecs = store.get_vectors(sample_ids)
    order = np.argsort(sample_ids)
    return sample_ids[order], sample_vecs[order]


def _with_systems(store: Store, embedder, ids: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """The map's view of texts: the prompt's vector plus its system prompt's (see
    :mod:`promptcov.index.system_vectors`)."""
    systems, _ = _texts_for(store, ids)
    if not any(systems):
        return vecs
    return combine(vecs, system_vectors(store, embedder, systems))


def _assign_texts(store: Store, cfg: MapConfig, pmap, embedder, n_texts: int, progress: Progress) -> pa.Table:
    """Cluster and capability of every embedded text, shard by shard (memory: one shard)."""
    from promptcov.coverage.areas.assigner import CapabilityAssigner
    from promptcov.coverage.areas.taxonomy import Taxonomy

    taxonomy = Taxonomy.load(extra=[cfg.taxonomy] if cfg.taxonomy else [])
    kw = {} if cfg.min_similarity is None else {"min_similarity": cfg.min_similarity}
    assigner = CapabilityAssigner(taxonomy=taxonomy, embedder=embedder, **kw).fit()
    parts, done = [], 0
    for _, ids, vecs in store.iter_shards():
        systems, prompts = _texts_for(store, ids)
        if any(systems):
            vecs = combine(vecs, system_vectors(store, embedder, systems))
        labels = pmap.predict(vecs)
        areas, scores, markers = assigner.predict(systems, prompts, vecs)
        # an explicit schema: a shard whose markers are all None must not become a null-typed column
        parts.append(pa.table({"text_id": ids, "cluster_id": labels.astype(np.int64),
                               "capability": areas.astype(str).tolist(), "capability_score": scores,
                               "marker": list(markers)}, schema=TEXT_MAP_SCHEMA))
        done += len(ids)
        progress.update("map", done, n_texts)
    return pa.concat_tables(parts) if parts else TEXT_MAP_SCHEMA.empty_table()


def _templates(store: Store, text_map: pa.Table, version: int):
    """Shared templates over all distinct prompts (MinHash/LSH); writes ``text_map`` with them."""
    from promptcov.coverage.templates.detector import TemplateDetector

    rows = store.con.execute("SELECT text_id, system, prompt FROM texts ORDER BY text_id").fetchnumpy()
    det = TemplateDetector().fit(list(rows["prompt"]), rows["text_id"], systems=list(rows["system"]))
    del rows
    tmpl = det.transform(text_map.column("text_id").to_numpy())
    text_map = text_map.append_column("template_id", pa.array(list(tmpl), pa.string()))
    text_map = text_map.append_column("map_version", pa.array(np.full(len(text_map), version, np.int32)))
    store.replace_table("text_map", text_map)
    return det


def _persist(store: Store, pmap, cfg: MapConfig, summary: MapSummary, max_id: int) -> None:
    """Save the fitted map for the next run's id matching."""
    pmap.save(store.map_dir / "model")
    ids_all = [int(c) for c in pmap.cluster_ids_]
    write_json(store.map_dir / "promptcov_map.json", {
        "version": summary.version, "max_id": max([max_id] + ids_all), "seed": cfg.seed,
        "sample_size": summary.sample, "n_texts": summary.n_texts,
        "taxonomy_extra": [cfg.taxonomy] if cfg.taxonomy else [], "assign": cfg.assign})


def _write_templates(store: Store, det) -> None:
    from promptcov.coverage.templates.detector import template_popularity

    req = store.con.execute("SELECT r.account_id, m.template_id FROM requests r JOIN text_map m USING (text_id)"
                            ).fetchnumpy()
    pop = template_popularity(list(req["template_id"]), list(req["account_id"]))
    stats = {r[0]: r[1:] for r in store.con.execute("""
        SELECT m.template_id, count(DISTINCT m.text_id), count(*), count(DISTINCT r.account_id)
        FROM requests r JOIN text_map m USING (text_id) WHERE m.template_id IS NOT NULL GROUP BY 1""").fetchall()}
    rows = {"template_id": [], "skeleton": [], "n_texts": [], "n_requests": [], "n_accounts": [],
            "popular": [], "example": []}
    for tid, info in det.templates_.items():
        n_texts, n_req, n_acc = stats.get(tid, (info.get("n_texts", 0), 0, 0))
        ex = store.con.execute("SELECT prompt FROM texts WHERE text_id = ?", [info["example_text_id"]]).fetchall()
        rows["template_id"].append(tid)
        rows["skeleton"].append(info["skeleton"])
        rows["n_texts"].append(int(n_texts))
        rows["n_requests"].append(int(n_req))
        rows["n_accounts"].append(int(n_acc))
        rows["popular"].append(bool(pop.get(tid, (0, False))[1]))
        rows["example"].append(ex[0][0][:500] if ex else "")
    store.replace_table("templates", pa.table(rows, schema=pa.schema([
        ("template_id", pa.string()), ("skeleton", pa.string()), ("n_texts", pa.int64()),
        ("n_requests", pa.int64()), ("n_accounts", pa.int64()), ("popular", pa.bool_()), ("example", pa.string())])))


def _write_clusters(store: Store, pmap, sample_ids: np.ndarray, sample_vecs: np.ndarray, version: int) -> None:
    from promptcov.coverage.map.naming import cluster_keywords, exemplars

    stats = store.con.execute("""
        WITH per_acc AS (
            SELECT m.cluster_id, r.account_id, count(*) AS n FROM requests r JOIN text_map m USING (text_id)
            WHERE m.cluster_id >= 0 GROUP BY 1, 2),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY cluster_id ORDER BY n DESC, account_id) AS rk
                   FROM per_acc)
        SELECT cluster_id, sum(n), count(*), sum(CASE WHEN rk <= 5 THEN n ELSE 0 END) / sum(n)
        FROM ranked GROUP BY 1""").fetchall()
    by_c = {int(r[0]): r[1:] for r in stats}
    n_texts = dict(store.con.execute("SELECT cluster_id, count(*) FROM text_map GROUP BY 1").fetchall())
    area = dict(store.con.execute("""
        SELECT cluster_id, arg_max(capability, n) FROM (
            SELECT m.cluster_id, m.capability, count(*) AS n FROM requests r JOIN text_map m USING (text_id)
            WHERE m.cluster_id >= 0 GROUP BY 1, 2) GROUP BY 1""").fetchall())
    first_seen = {}
    if store.has_table("clusters"):
        first_seen = dict(store.con.execute("SELECT cluster_id, min(first_seen_version) FROM clusters GROUP BY 1"
                                            ).fetchall())
    labels = pmap.predict(sample_vecs)
    _, prompts = _texts_for(store, sample_ids)
    keywords = cluster_keywords(prompts, labels, top_n=8) if len(prompts) else {}
    ex_idx = exemplars(sample_vecs, labels, pmap.centroids_, k=3, cluster_ids=pmap.cluster_ids_)
    layout = getattr(pmap, "layout_", np.zeros((len(pmap.cluster_ids_), 2)))
    rows = []
    for j, cid in enumerate(pmap.cluster_ids_):
        cid = int(cid)
        size, n_acc, top5 = by_c.get(cid, (0, 0, 0.0))
        rows.append({
            "cluster_id": cid, "map_version": version, "size": int(size or 0), "n_texts": int(n_texts.get(cid, 0)),
            "n_accounts": int(n_acc or 0), "top5_share": float(top5 or 0.0), "capability": area.get(cid, "other"),
            "keywords": ", ".join(keywords.get(cid, [])),
            "exemplars": json.dumps([prompts[i][:300] for i in ex_idx.get(cid, [])], ensure_ascii=False),
            "is_new": bool(pmap.is_new_.get(cid, False)), "first_seen_version": int(first_seen.get(cid, version)),
            "centroid_x": float(layout[j][0]), "centroid_y": float(layout[j][1])})
    schema = pa.schema([("cluster_id", pa.int32()), ("map_version", pa.int32()), ("size", pa.int64()),
                        ("n_texts", pa.int64()), ("n_accounts", pa.int64()), ("top5_share", pa.float64()),
                        ("capability", pa.string()), ("keywords", pa.string()), ("exemplars", pa.string()),
                        ("is_new", pa.bool_()), ("first_seen_version", pa.int32()), ("centroid_x", pa.float64()),
                        ("centroid_y", pa.float64())])
    store.replace_table("clusters", pa.Table.from_pylist(rows, schema=schema))


def _write_points(store: Store, pmap, sample_ids: np.ndarray, sample_vecs: np.ndarray, cfg: MapConfig) -> None:
    """A 2-D projection of a sample of texts for the report's prompt-space map (seeded UMAP)."""
    n = min(cfg.projection_points, len(sample_ids))
    if n < 10:
        return
    rng = np.random.default_rng(cfg.seed + 1)
    pick = np.sort(rng.choice(len(sample_ids), n, replace=False))
    import umap

    xy = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), min_dist=0.1, metric="cosine",
                   random_state=cfg.seed).fit_transform(sample_vecs[pick])
    store.replace_table("map_points", pa.table({"text_id": sample_ids[pick], "x": xy[:, 0].astype(np.float64),
                                                  "y": xy[:, 1].astype(np.float64)}))
