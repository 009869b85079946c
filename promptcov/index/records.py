"""One request-log record: validation and normalisation (``../shared/spec/log-format.md``).

A gateway log record becomes a flat dict with the store's columns. Anything that breaks the
format raises :class:`BadRecord` with a short reason; the ingest job quarantines it with the
source file and line and carries on.

>>> r = normalize_record({"account_id": "a1", "timestamp": "2026-11-16T09:12:44Z",
...                       "prompt": "Write a haiku about rain"}, source="log.jsonl", line=1)
>>> r["account_id"], r["ts"].isoformat(), r["turn_index"]
('a1', '2026-11-16T09:12:44', None)
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "BadRecord",
    "KNOWN_FIELDS",
    "normalize_record",
    "parse_timestamp",
    "text_id",
    "content_hash",
    "derive_request_id",
    "embed_text",
    "system_text",
]

#: Fields the log format defines; anything else is kept as opaque metadata.
KNOWN_FIELDS = (
    "request_id", "account_id", "timestamp", "prompt", "messages", "system", "conversation_id",
    "turn_index", "model", "org_id", "ip", "asn", "payment_id", "user_agent",
)
_OPTIONAL_STR = ("request_id", "system", "conversation_id", "model", "org_id", "ip", "payment_id", "user_agent")
_MS_CUTOFF = 1e11  # epoch values above this are milliseconds
_MAX_INT63 = (1 << 63) - 1
_MAX_INT32 = (1 << 31) - 1  # turn_index is stored as INTEGER


class BadRecord(ValueError):
    """A record that breaks the log format; ``reason`` says how."""

    def __init__(self, reason: str, raw: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.raw = raw  # the undecodable source text, kept so that quarantine loses nothing


def text_id(system: str, prompt: str) -> int:
    """Stable 63-bit id of a distinct (system, prompt) text: the unit that is embedded once."""
    h = hashlib.blake2b(digest_size=8)
    h.update(system.encode("utf-8", "surrogatepass"))
    h.update(b"\x1f")
    h.update(prompt.encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest(), "little") & _MAX_INT63


def content_hash(raw: Any) -> str:
    """Stable hash of a raw record's content: blake2b of its sorted-key JSON (ASCII, compact).

    Two records with the same fields and values have the same hash, whatever the key order or
    the file they came from. Values JSON cannot hold (Parquet datetimes, bytes) hash by ``str``.
    Raises :class:`BadRecord` when the record is nested too deeply to serialise.
    """
    try:
        text = json.dumps(raw, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
    except RecursionError as exc:
        raise BadRecord("record is nested too deeply") from exc
    except (TypeError, ValueError):  # keys JSON cannot sort (not seen from the readers)
        text = repr(raw)
    return hashlib.blake2b(text.encode("ascii", "backslashreplace"), digest_size=16).hexdigest()


def derive_request_id(content: str, line: int) -> str:
    """Request id for records without one: a stable hash of the record's content and line/row number.

    ``content`` is the record's :func:`content_hash`. The file's name and path are never part
    of it (the contract, log-format.md): two daily files called ``gateway.jsonl`` in different
    folders are different logs, and the same file read again from a new path is the same log.
    """
    key = f"{content}:{int(line)}"
    return "h-" + hashlib.sha1(key.encode("ascii")).hexdigest()[:20]


def embed_text(system: str, prompt: str) -> str:
    """The text whose vector is stored for a (system, prompt) pair: the prompt alone.

    A stored vector is the prompt's, so an exact prompt finds itself at similarity 1 whether or
    not it was sent with a system prompt, and a product's long fixed system prompt does not drown
    the varied questions its users ask. System prompts get vectors of their own
    (:func:`system_text`), which the map combines with the prompt's where it needs both
    (:mod:`promptcov.pipeline.map_job`); ``system`` is accepted so callers keep one signature.
    """
    return prompt


def system_text(system: str, max_chars: int = 2000) -> str:
    """The text embedded for a system prompt (its head: a scaffold's role and instructions)."""
    return (system or "")[:max_chars]


def parse_timestamp(value: Any) -> datetime:
    """Parse an ISO 8601 string with offset/``Z`` or epoch seconds/milliseconds to naive UTC."""
    if isinstance(value, bool):
        raise BadRecord("timestamp has the wrong type (bool)")
    if isinstance(value, datetime):
        if value.tzinfo is None:  # Parquet timestamps without zone are UTC by convention
            return value
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, (int, float)):
        try:
            v = float(value)
        except OverflowError as exc:
            raise BadRecord(f"timestamp out of range: {value!r}"[:120]) from exc
        if v != v or v in (float("inf"), float("-inf")):
            raise BadRecord("timestamp is not a finite number")
        if v > _MS_CUTOFF:
            v /= 1000.0
        try:
            return datetime.fromtimestamp(v, tz=timezone.utc).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError) as exc:
            raise BadRecord(f"timestamp out of range: {value!r}") from exc
    if isinstance(value, str):
        s = value.strip()
        if not s:
            raise BadRecord("timestamp is empty")
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError as exc:
            raise BadRecord(f"unparseable timestamp {value!r}") from exc
        if dt.tzinfo is None:
            raise BadRecord(f"timestamp {value!r} has no UTC offset or Z")
        return dt.astimezone(timezone.utc).replace(tzinfo=None)
    raise BadRecord(f"timestamp has the wrong type ({type(value).__name__})")


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                kind = part.get("type")
                if kind == "text":
                    text = part.get("text")
                    if not isinstance(text, str):
                        raise BadRecord(f"{where}: a text part has no string 'text'")
                    parts.append(text)
                elif kind in ("image_url", "image", "input_image"):
                    parts.append("[image]")  # keeps the request shape visible (computer vision)
            else:
                raise BadRecord(f"{where}: content parts must be objects")
        return "\n".join(parts)
    if content is None:
        return ""
    raise BadRecord(f"{where}: content has the wrong type ({type(content).__name__})")


def _from_messages(messages: Any) -> tuple[str, str, int]:
    """(last user prompt, joined system text, number of earlier user turns)."""
    if not isinstance(messages, list):
        raise BadRecord(f"messages has the wrong type ({type(messages).__name__}); expected a list")
    systems, users = [], []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m:
            raise BadRecord(f"messages[{i}] is not a {{role, content}} object")
        role = m.get("role")
        if role == "system":
            systems.append(_content_text(m.get("content"), f"messages[{i}]"))
        elif role == "user":
            users.append(_content_text(m.get("content"), f"messages[{i}]"))
    if not users:
        raise BadRecord("messages has no user message")
    return users[-1], "\n\n".join(s for s in systems if s), len(users) - 1


def _opt_str(raw: dict, name: str) -> str | None:
    v = raw.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise BadRecord(f"field {name!r} has the wrong type ({type(v).__name__}); expected a string")
    return v


def _check_unicode(out: dict, meta: dict) -> None:
    """Refuse lone surrogates: they are not Unicode text, and DuckDB/Arrow cannot store them."""
    for name, v in out.items():
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BadRecord(f"field {name!r} holds a lone surrogate ({v[exc.start]!r} at character "
                                f"{exc.start}): not valid Unicode") from None
    for key, v in meta.items():
        try:
            json.dumps({key: v}, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRecord(f"field {key!r} holds a lone surrogate: not valid Unicode") from None


def normalize_record(raw: Any, source: str, line: int, content: str | None = None) -> dict:
    """Validate one raw record and return the store row (without ``text_id``'s text columns).

    Returns a dict with keys ``request_id, account_id, ts, system, prompt, conversation_id,
    turn_index, model, org_id, ip, asn, payment_id, user_agent, meta, source, line,
    content_hash``. ``content`` is the :func:`content_hash` of the record as read (before any
    field mapping); by default it is computed from ``raw``. Raises :class:`BadRecord` when the
    record breaks the log format, holds a lone surrogate, a number out of range, or is nested
    too deeply to process.
    """
    try:
        if content is None:
            content = content_hash(raw)
        return _normalize(raw, source, line, content)
    except BadRecord:
        raise
    except RecursionError as exc:
        raise BadRecord("record is nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer with more digits than Python converts to text
        raise BadRecord(f"record holds a value out of range: {exc}") from exc


def _short_int(v: int) -> str:
    """``v`` as text, or its digit count when it is too long to show (or to convert)."""
    if abs(v) < 10**30:
        return str(v)
    return f"an integer of about {int(v.bit_length() * 0.30103) + 1} digits"


def _normalize(raw: Any, source: str, line: int, content: str) -> dict:
    if not isinstance(raw, dict):
        raise BadRecord(f"record is not an object ({type(raw).__name__})")
    acc = raw.get("account_id")
    if acc is None or acc == "":
        raise BadRecord("missing required field 'account_id'")
    if not isinstance(acc, str):
        raise BadRecord(f"field 'account_id' has the wrong type ({type(acc).__name__}); expected a string")
    if raw.get("timestamp") is None or raw.get("timestamp") == "":
        raise BadRecord("missing required field 'timestamp'")
    ts = parse_timestamp(raw["timestamp"])

    out = {name: _opt_str(raw, name) for name in _OPTIONAL_STR}
    prompt = raw.get("prompt")
    turn_index = raw.get("turn_index")
    system = out["system"]
    if prompt is not None:
        if not isinstance(prompt, str):
            raise BadRecord(f"field 'prompt' has the wrong type ({type(prompt).__name__}); expected a string")
        if raw.get("messages") is not None:
            _, msg_system, earlier = _from_messages(raw["messages"])
            system = system if system is not None else (msg_system or None)
            turn_index = earlier if turn_index is None else turn_index
    elif raw.get("messages") is not None:
        prompt, msg_system, earlier = _from_messages(raw["messages"])
        if system is None:
            system = msg_system or None
        if turn_index is None:
            turn_index = earlier
    else:
        raise BadRecord("missing required field 'prompt' (and no 'messages')")
    if not prompt.strip():
        raise BadRecord("empty prompt")

    if turn_index is not None:
        if isinstance(turn_index, bool) or not isinstance(turn_index, int):
            raise BadRecord(f"field 'turn_index' has the wrong type ({type(turn_index).__name__}); expected an integer")
        if turn_index < 0:
            raise BadRecord(f"field 'turn_index' is negative ({_short_int(turn_index)})")
        if turn_index > _MAX_INT32:
            raise BadRecord(f"field 'turn_index' is out of range ({_short_int(turn_index)} > {_MAX_INT32})")
    asn = raw.get("asn")
    if asn is not None:
        if isinstance(asn, bool) or not isinstance(asn, (str, int)):
            raise BadRecord(f"field 'asn' has the wrong type ({type(asn).__name__}); expected a string or integer")
        asn = str(asn)

    meta = {k: v for k, v in raw.items() if k not in KNOWN_FIELDS}
    _check_unicode({**out, "account_id": acc, "prompt": prompt, "system": system or ""}, meta)
    request_id = out["request_id"] or derive_request_id(content, line)
    out.update(
        request_id=request_id,
        account_id=acc,
        ts=ts,
        system=system or "",
        prompt=prompt,
        turn_index=turn_index,
        asn=asn,
        meta=json.dumps(meta, ensure_ascii=False, default=str, sort_keys=True) if meta else None,
        source=str(source),
        line=int(line),
        content_hash=content,
    )
    return out
