"""The prompt-space map: UMAP + HDBSCAN fitted on a sample, stable cluster ids, cluster names."""

__all__ = ["prompt_map", "geometry", "stability", "persist", "naming"]
