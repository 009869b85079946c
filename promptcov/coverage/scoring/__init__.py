"""Scores, threshold calibration, reasons, pivots and the sweep detector."""

__all__ = ["score", "detector", "pivots"]
