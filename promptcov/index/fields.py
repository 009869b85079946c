"""Field maps: read logs whose field names differ from the contract's (real gateway exports).

A field map says, for each contract field, where its value sits in the source record, as a
dotted path (``metadata.user_api_key_team_id``). It is applied to each raw record before
:func:`~promptcov.index.records.normalize_record`. Paths are tried in order and the first one
present wins; a literal key containing dots (a flattened CSV header) is tried before descending;
a string that holds a JSON object or array (a CSV export of a JSON column) is descended into.

Two ready profiles ship, selected with ``--format NAME`` or ``[ingest] format``:

``litellm``
    A LiteLLM proxy spend-log export (``LiteLLM_SpendLogs`` rows as JSONL, CSV or Parquet):
    ``api_key`` (the hashed virtual key) is the account, ``startTime`` the timestamp (naive
    values are UTC, as LiteLLM stores them), ``requester_ip_address`` the address, the key's
    team ``metadata.user_api_key_team_id`` the organisation, ``messages`` the conversation,
    ``session_id`` the conversation id. Rows logged without prompts (LiteLLM's default) are
    quarantined as missing a prompt.
``openai-batch``
    The OpenAI Batch API request file (``{"custom_id", "method", "url", "body": {...}}`` per
    line): ``body.messages``, ``body.model`` (``body.prompt`` for ``/v1/completions``). A batch
    file belongs to one account and carries no time, so ``[ingest] account_id`` is required and
    the time is ``[ingest] timestamp`` (an ISO time, or ``"mtime"``, the default: the file's
    modification time). ``custom_id`` is unique only inside one batch, so it stays metadata and
    the request id is derived from the record's content, line and account.

>>> fm = build_field_map(fields={"account_id": "meta.key", "timestamp": "startTime"})
>>> fm.apply({"meta": {"key": "k1"}, "startTime": "2026-11-16T09:12:44Z", "prompt": "hi"})[0]
{'meta': {}, 'prompt': 'hi', 'account_id': 'k1', 'timestamp': '2026-11-16T09:12:44Z'}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from promptcov.errors import InputError
from promptcov.index.readers import parse_json_text
from promptcov.index.records import KNOWN_FIELDS, BadRecord

__all__ = ["FieldMap", "PROFILES", "build_field_map"]

#: The ready profiles: contract field -> candidate source paths, plus options.
PROFILES: dict[str, dict[str, Any]] = {
    "litellm": {
        "paths": {
            "request_id": ("request_id",),
            "account_id": ("api_key", "metadata.user_api_key_hash", "metadata.user_api_key"),
            "timestamp": ("startTime", "start_time"),
            "ip": ("requester_ip_address", "metadata.requester_ip_address"),
            "org_id": ("metadata.user_api_key_team_id", "team_id", "metadata.user_api_key_org_id"),
            "messages": ("messages", "proxy_server_request.messages"),
            "model": ("model", "model_group"),
            "conversation_id": ("session_id",),
        },
        "assume_utc": True,
    },
    "openai-batch": {
        "paths": {
            "messages": ("body.messages",),
            "prompt": ("body.prompt",),
            "model": ("body.model",),
        },
        "needs_account": True,
        "timestamp": "mtime",
    },
}


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, (str, dict, list)) and len(v) == 0)


def _get(raw: Mapping, path: str) -> tuple[bool, Any]:
    """``(found, value)`` of a dotted path; empty values count as absent."""
    if path in raw:
        v = raw[path]
        return (not _missing(v)), v
    cur: Any = raw
    for seg in path.split("."):
        if isinstance(cur, str) and cur.lstrip()[:1] in ("{", "["):
            cur = parse_json_text(cur)
        if isinstance(cur, dict) and seg in cur:
            cur = cur[seg]
        elif isinstance(cur, list) and seg.lstrip("-").isdigit() and -len(cur) <= int(seg) < len(cur):
            cur = cur[int(seg)]
        else:
            return False, None
    return (not _missing(cur)), cur


def _remove(out: dict, path: str) -> None:
    """Remove ``path`` from ``out`` (copying the dicts on the way), so it is not kept twice as metadata."""
    if path in out:
        del out[path]
        return
    segs = path.split(".")
    parent = out
    for seg in segs[:-1]:
        child = parent.get(seg)
        if not isinstance(child, dict):
            return
        child = dict(child)
        parent[seg] = child
        parent = child
    parent.pop(segs[-1], None)


def _utc_if_naive(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    s = value.strip()
    try:
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
    except ValueError:
        return value
    return dt.replace(tzinfo=timezone.utc).isoformat() if dt.tzinfo is None else value


@dataclass(frozen=True)
class FieldMap:
    """Where each contract field sits in the source records; see the module docstring."""

    paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    account_id: str | None = None   # used when a record has no account
    timestamp: str | None = None    # used when a record has no time: ISO time or "mtime"
    assume_utc: bool = False        # timestamps without offset are UTC
    name: str = "custom"

    def file_time(self, path: str | os.PathLike) -> str | None:
        """The fallback timestamp for records of ``path`` (its mtime when so configured)."""
        if self.timestamp != "mtime":
            return self.timestamp
        mtime = Path(path).stat().st_mtime
        return datetime.fromtimestamp(mtime, tz=timezone.utc).isoformat()

    def apply(self, raw: Any, file_time: str | None = None) -> tuple[Any, dict]:
        """``(record in the contract's names, constants used)``; ``raw`` is not changed.

        ``constants used`` holds the configured account id when it filled a missing account:
        it becomes part of the record's content (two accounts' copies of one batch file differ).
        """
        if not isinstance(raw, dict):
            return raw, {}
        out = dict(raw)
        for name, candidates in self.paths.items():
            for path in candidates:
                found, value = _get(raw, path)
                if found:
                    if path != name:
                        _remove(out, path)
                    out[name] = value
                    break
        used = {}
        if self.account_id is not None and _missing(out.get("account_id")):
            out["account_id"] = used["account_id"] = self.account_id
        ts = file_time if file_time is not None else (None if self.timestamp == "mtime" else self.timestamp)
        if ts is not None and _missing(out.get("timestamp")):
            out["timestamp"] = ts
        if self.assume_utc:
            out["timestamp"] = _utc_if_naive(out.get("timestamp"))
            if out["timestamp"] is None:
                del out["timestamp"]
        if isinstance(out.get("messages"), str):
            parsed = parse_json_text(out["messages"])
            if not isinstance(parsed, BadRecord):
                out["messages"] = parsed
        if _missing(out.get("messages")):  # e.g. LiteLLM's {} when prompts are not stored
            out.pop("messages", None)
        return out, used


def _paths(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise InputError(f"[ingest.fields] {name}: expected a dotted path or a list of them, got {value!r}")


def build_field_map(format: str | None = None, fields: Mapping[str, Any] | None = None,
                    account_id: str | None = None, timestamp: str | None = None) -> FieldMap | None:
    """The field map of a profile (``format``) with ``fields`` laid over it; ``None`` when neither
    is given and no constant is set (records are read as the contract names them).

    Raises :class:`~promptcov.errors.InputError` for an unknown profile or contract field, or
    when ``openai-batch`` has no ``account_id``.
    """
    profile: dict[str, Any] = {}
    if format:
        if format not in PROFILES:
            raise InputError(f"unknown log format {format!r}; known: {', '.join(PROFILES)} "
                             f"(or map fields yourself in [ingest.fields])")
        profile = PROFILES[format]
    paths = dict(profile.get("paths", {}))
    for name, value in (fields or {}).items():
        if name not in KNOWN_FIELDS:
            raise InputError(f"[ingest.fields]: {name!r} is not a field of the log format "
                             f"(known: {', '.join(KNOWN_FIELDS)})")
        paths[name] = _paths(name, value)
    if profile.get("needs_account") and not account_id:
        raise InputError(f"--format {format}: the file has no account per record; set "
                         f"[ingest] account_id = \"...\" in the config (the account that submitted it)")
    if timestamp is not None and timestamp != "mtime":
        try:
            datetime.fromisoformat(timestamp.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InputError(f"[ingest] timestamp: {timestamp!r} is neither an ISO 8601 time nor \"mtime\"") from exc
    if not format and not paths and account_id is None and timestamp is None:
        return None
    return FieldMap(paths=paths, account_id=account_id, timestamp=timestamp or profile.get("timestamp"),
                    assume_utc=bool(profile.get("assume_utc")), name=format or "custom")
