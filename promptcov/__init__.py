"""promptcov: semantic prompt-coverage analysis for finding distillation sweeps in LLM API logs."""

__version__ = "0.1.0"
__all__ = ["__version__"]
