"""The FastAPI application: routes, access control and the JSON error shape.

Every error body is ``{"error": "..."}``: 401 for a missing or wrong token, 400 for bad input
the library rejects, 404 for an unknown request or account, 422 for a body or query that does
not validate (FastAPI's default validation body is replaced by this shape).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from promptcov import __version__
from promptcov.errors import InputError
from promptcov.index.records import embed_text
from promptcov.index.search import Searcher
from promptcov.service.auth import check_bearer
from promptcov.service.batching import EmbedBatcher

__all__ = ["create_app", "MAX_K", "MAX_TEXT_CHARS"]

log = logging.getLogger(__name__)

MAX_K = 1000
MAX_TEXT_CHARS = 100_000


class SearchBody(BaseModel):
    text: str = Field(..., min_length=1, max_length=MAX_TEXT_CHARS, description="the query prompt")
    k: int = Field(10, ge=1, le=MAX_K, description="number of hits")


class Hit(BaseModel):
    request_id: str
    account_id: str
    timestamp: str
    prompt: str
    similarity: float
    cluster_id: int | None
    capability: str | None
    n_requests: int
    accounts: list[str]


class Health(BaseModel):
    status: str
    generation: str | None
    model: str | None
    counts: dict[str, int]


class AccountAnswer(BaseModel):
    account: dict
    group: dict | None
    evidence: dict | list | None
    group_evidence: dict | list | None


class ErrorBody(BaseModel):
    error: str


_ACCOUNT_COLUMNS = ("account_id", "n_requests", "score", "flagged", "group_id", "top_capability", "reasons",
                    "benign_kind", "window_start", "window_end")
_GROUP_COLUMNS = ("group_id", "n_accounts", "n_requests", "score", "flagged", "capabilities", "reasons",
                  "members", "first_seen", "last_seen")
_ERRORS = {401: {"model": ErrorBody}, 400: {"model": ErrorBody}, 422: {"model": ErrorBody}}


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _parse_json(value):
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _row(row: dict | None, columns: tuple[str, ...]) -> dict | None:
    if row is None:
        return None
    out = {c: row[c] for c in columns if c in row}
    for c in ("window_start", "window_end"):
        if out.get(c) is not None and hasattr(out[c], "isoformat"):
            out[c] = out[c].isoformat() + "Z"
    if "members" in out:
        out["members"] = _parse_json(out["members"])
    return out


def create_app(searcher: Searcher, token: str, max_batch: int = 32) -> FastAPI:
    """The service over ``searcher`` (opened on the store), guarded by ``token``."""
    if not token:
        raise InputError("the service needs a non-empty token")
    app = FastAPI(title="promptcov lookup service", version=__version__,
                  description="Similarity lookups and account scores over a promptcov store.",
                  openapi_url=None, docs_url=None, redoc_url=None)  # the schema is served behind the token
    batcher = EmbedBatcher(lambda texts: searcher.embedder.embed(texts), max_batch=max_batch)
    app.state.searcher = searcher

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return _error(422, _validation_message(exc))

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return _error(400, str(exc))

    def authorized(authorization: str | None = Header(default=None, include_in_schema=False)) -> None:
        if not check_bearer(authorization, token):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer $PROMPTCOV_TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})

    def fresh() -> Searcher:
        searcher.refresh()
        return searcher

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(authorized)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/healthz", response_model=Health, summary="liveness and the store's published counts")
    def healthz() -> Health:
        s = fresh()
        snap = s.snapshot
        return Health(status="ok", generation=snap.generation if snap else None,
                      model=snap.manifest.get("model") if snap else None,
                      counts={k: int(v) for k, v in (snap.counts if snap else {}).items()})

    @app.post("/search", response_model=list[Hit], responses=_ERRORS, dependencies=[Depends(authorized)],
              summary="the stored prompts nearest to a text")
    def search_text(body: SearchBody):
        s = fresh()
        if not body.text.strip():
            raise InputError("text is empty")
        vec = batcher.embed_one(embed_text("", body.text))
        return JSONResponse(s.search_vector(vec, body.k))  # already in the Hit shape: skip re-validation

    @app.get("/search", response_model=list[Hit], responses={**_ERRORS, 404: {"model": ErrorBody}},
             dependencies=[Depends(authorized)], summary="the stored prompts nearest to a stored request's text")
    def search_request(request_id: Annotated[str, Query(min_length=1, max_length=1000)],
                       k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):
        s = fresh()
        if s.snapshot.text_of_request(request_id) is None:
            raise HTTPException(404, f"request_id {request_id!r} is not in the store")
        return JSONResponse(s.search_request(request_id, k))

    @app.get("/accounts/{account_id}", response_model=AccountAnswer, responses={**_ERRORS, 404: {"model": ErrorBody}},
             dependencies=[Depends(authorized)], summary="an account's scores, its group and their evidence")
    def account(account_id: Annotated[str, Path(min_length=1, max_length=1000)]) -> dict:
        snap = fresh().snapshot
        if "accounts" not in snap.tables:
            raise HTTPException(404, "no scores published yet; run `promptcov score`")
        row = snap.account(account_id)
        if row is None:
            raise HTTPException(404, f"account {account_id!r} is not in the accounts table")
        group = snap.group(row.get("group_id") or "")
        return {"account": _row(row, _ACCOUNT_COLUMNS), "group": _row(group, _GROUP_COLUMNS),
                "evidence": _parse_json(row.get("evidence")),
                "group_evidence": _parse_json(group.get("evidence")) if group else None}

    return app
