"""Shared templates: slot-masked skeletons, MinHash signatures, LSH grouping and popularity."""

__all__ = ["detector", "minhash"]
