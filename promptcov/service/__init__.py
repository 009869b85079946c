"""The HTTP lookup service (``promptcov serve``): FastAPI over the store's published snapshot.

One process keeps the model and the FAISS index loaded and answers lookups for dashboards and
other tools. It reads only the snapshot the jobs publish, so it keeps answering while
``ingest``, ``embed``, ``map`` or ``score`` hold the store, and it moves to each new generation
once it is published.
"""

from promptcov.service.app import MAX_K, create_app
from promptcov.service.auth import TOKEN_ENV, check_bearer, token_from_env
from promptcov.service.server import serve

__all__ = ["create_app", "serve", "check_bearer", "token_from_env", "TOKEN_ENV", "MAX_K"]
