"""Account linking: shared rare behaviour, payment, infrastructure and timing into groups."""

__all__ = ["linker", "cooccurrence"]
