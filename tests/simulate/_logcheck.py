"""Read simulated logs back and check each record against ../shared/spec/log-format.md."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime
from pathlib import Path

FIELDS = {"request_id", "account_id", "timestamp", "prompt", "messages", "system", "conversation_id",
          "turn_index", "model", "org_id", "ip", "asn", "payment_id", "user_agent"}  # fmt: skip
_STR_FIELDS = ("request_id", "system", "conversation_id", "model", "org_id", "ip", "payment_id", "user_agent")


def to_epoch(value) -> float:
    if isinstance(value, bool):
        raise ValueError("bool timestamp")
    if isinstance(value, (int, float)):
        return value / 1000.0 if value > 1e11 else float(value)
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("no offset")
    return dt.timestamp()


def check_record(obj) -> str | None:
    """The reason ``obj`` breaks the log format, or None when it is a good record."""
    if not isinstance(obj, dict):
        return "not an object"
    if not isinstance(obj.get("account_id"), str) or not obj["account_id"]:
        return "account_id"
    try:
        to_epoch(obj.get("timestamp"))
    except (TypeError, ValueError, AttributeError):
        return "timestamp"
    if "prompt" in obj:
        if not isinstance(obj["prompt"], str) or not obj["prompt"].strip():
            return "prompt"
    else:
        msgs = obj.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return "messages"
        for m in msgs:
            if (
                not isinstance(m, dict)
                or not isinstance(m.get("content"), str)
                or m.get("role")
                not in (
                    "system",
                    "user",
                    "assistant",
                )
            ):
                return "messages item"
        users = [m for m in msgs if m["role"] == "user"]
        if not users or not users[-1]["content"].strip():
            return "messages user"
    for name in _STR_FIELDS:
        if name in obj and not isinstance(obj[name], str):
            return name
    ti = obj.get("turn_index")
    if ti is not None and (isinstance(ti, bool) or not isinstance(ti, int) or ti < 0):
        return "turn_index"
    if "asn" in obj and (isinstance(obj["asn"], bool) or not isinstance(obj["asn"], (str, int))):
        return "asn"
    if set(obj) - FIELDS:
        return "unknown field"
    return None


def prompt_of(obj: dict) -> tuple[str, str, int]:
    """(system, prompt, turn_index) as the log format derives them."""
    if "prompt" in obj:
        return obj.get("system", ""), obj["prompt"], obj.get("turn_index", 0)
    msgs = obj["messages"]
    system = "\n".join(m["content"] for m in msgs if m["role"] == "system")
    users = [m for m in msgs if m["role"] == "user"]
    return system, users[-1]["content"], len(users) - 1


def read_logs(paths: list[Path]) -> tuple[list[dict], list[str]]:
    """Good records (with ``_ts`` epoch seconds added) and the raw lines of the bad ones."""
    good, bad = [], []
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    bad.append(line)
                    continue
                if check_record(obj) is not None:
                    bad.append(line)
                    continue
                obj["_ts"] = to_epoch(obj["timestamp"])
                good.append(obj)
    return good, bad


def read_labels(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8") as fh:
        return {row["account_id"]: row for row in csv.DictReader(fh)}
