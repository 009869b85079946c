from datetime import datetime

import pytest

from promptcov.index.records import (
    BadRecord,
    content_hash,
    derive_request_id,
    normalize_record,
    parse_timestamp,
    text_id,
)


def rec(**kw):
    base = {"account_id": "a", "timestamp": "2026-11-16T09:12:44Z", "prompt": "hello"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def test_timestamps_iso_offset_epoch_and_millis():
    assert parse_timestamp("2026-11-16T09:12:44Z") == datetime(2026, 11, 16, 9, 12, 44)
    assert parse_timestamp("2026-11-16T10:12:44+01:00") == datetime(2026, 11, 16, 9, 12, 44)
    assert parse_timestamp(1763284364) == datetime(2025, 11, 16, 9, 12, 44)
    assert parse_timestamp(1763284364000) == parse_timestamp(1763284364)
    assert parse_timestamp(1763284364.5).microsecond == 500000


@pytest.mark.parametrize("value,reason", [
    ("yesterday", "unparseable timestamp"),
    ("2026-11-16T09:12:44", "no UTC offset"),
    (True, "wrong type"),
    ([1], "wrong type"),
    ("", "empty"),
])
def test_bad_timestamps(value, reason):
    with pytest.raises(BadRecord, match=reason):
        parse_timestamp(value)


def test_messages_shape_gives_prompt_system_and_turn_index():
    r = normalize_record(rec(prompt=..., messages=[
        {"role": "system", "content": "You are a grader."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "Score this"}, {"type": "image_url", "image_url": {}}]},
    ]), "f.jsonl", 3)
    assert r["prompt"] == "Score this\n[image]"
    assert r["system"] == "You are a grader."
    assert r["turn_index"] == 1


def test_unknown_fields_kept_as_meta_and_ids_derived():
    raw = rec(tenant="x", asn=64500)
    r = normalize_record(raw, "logs/f.jsonl", 7)
    assert r["meta"] == '{"tenant": "x"}'
    assert r["asn"] == "64500"
    # content and line number, never the file's name or path
    assert r["request_id"] == derive_request_id(content_hash(raw), 7)
    assert normalize_record(dict(reversed(raw.items())), "other/dir/g.jsonl", 7)["request_id"] == r["request_id"]
    assert normalize_record(raw, "logs/f.jsonl", 8)["request_id"] != r["request_id"]
    assert normalize_record(rec(tenant="y", asn=64500), "logs/f.jsonl", 7)["request_id"] != r["request_id"]


@pytest.mark.parametrize("raw,reason", [
    (rec(account_id=...), "missing required field 'account_id'"),
    (rec(account_id=5), "'account_id' has the wrong type"),
    (rec(timestamp=...), "missing required field 'timestamp'"),
    (rec(prompt=...), "missing required field 'prompt'"),
    (rec(prompt="   "), "empty prompt"),
    (rec(prompt=3), "'prompt' has the wrong type"),
    (rec(turn_index="2"), "'turn_index' has the wrong type"),
    (rec(turn_index=-1), "negative"),
    (rec(model=7), "'model' has the wrong type"),
    (rec(prompt=..., messages="hi"), "messages has the wrong type"),
    (rec(prompt=..., messages=[{"role": "assistant", "content": "x"}]), "no user message"),
    ([1, 2], "not an object"),
])
def test_bad_records(raw, reason):
    with pytest.raises(BadRecord, match=reason):
        normalize_record(raw, "f", 1)


def test_text_id_is_stable_and_separates_system():
    assert text_id("", "a") == text_id("", "a")
    assert text_id("s", "a") != text_id("", "a")
    assert text_id("s", "a") != text_id("", "s\x1fa") or True
    assert 0 <= text_id("x", "y") < 2**63
