"""Pure numpy coverage and sweep metrics, per account and per pool of accounts."""

__all__ = ["accounts", "basic", "space", "coverage", "groups"]
