"""Capability areas: the taxonomy (TOML), request-shape markers and the area assigner."""

__all__ = ["taxonomy", "markers", "features", "assigner"]
