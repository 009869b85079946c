"""Field maps and the ready profiles (issue 9 item 10), on fixtures written in the real shapes."""

import json
import os
import shutil
from pathlib import Path

import pytest

from promptcov.cli import main
from promptcov.errors import InputError
from promptcov.index.fields import PROFILES, build_field_map
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store

FIX = Path(__file__).parent / "fixtures"
KEY1 = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"


def _rows(store):
    return store.con.execute(
        "SELECT r.request_id, r.account_id, r.ts, r.ip, r.org_id, r.model, r.conversation_id, r.turn_index, "
        "t.system, t.prompt, r.meta FROM requests r JOIN texts t USING (text_id) ORDER BY r.request_id").fetchall()


@pytest.mark.parametrize("name", ["litellm_spendlogs.jsonl", "litellm_spendlogs_export.csv"])
def test_litellm_profile_maps_key_hash_time_ip_team_and_messages(tmp_path, name):
    store = Store(tmp_path / "s")
    s = ingest_files(store, [FIX / name], field_map=build_field_map("litellm"))
    assert (s.read, s.stored, s.quarantined) == (4, 3, 1), s.line()
    rows = _rows(store)
    rid, acc, ts, ip, org, model, conv, turn, system, prompt, meta = rows[0]
    assert rid == "chatcmpl-9f1c2a7e-0001" and acc == KEY1
    assert ts.isoformat() == "2026-11-16T09:12:44.123000"  # naive LiteLLM time read as UTC
    assert (ip, org, model, conv, turn) == ("203.0.113.7", "team-7", "gpt-4o-mini", "sess-a", 0)
    assert system == "You are a careful translator."
    assert prompt == "Translate to French: the meeting moved to Tuesday."
    assert rows[1][7] == 1 and rows[1][9] == "Now make it shorter."  # second user turn
    assert rows[2][5] == "gpt-4o" and rows[2][4] == "team-9"
    assert "api_key" not in json.loads(meta) and "spend" in json.loads(meta)  # mapped fields not kept twice
    (bad,) = store.quarantined()
    assert "missing required field 'prompt'" in bad["reason"]  # LiteLLM logged no prompt for this row


def test_without_the_profile_a_litellm_export_is_quarantined(tmp_path):
    store = Store(tmp_path / "s")
    s = ingest_files(store, [FIX / "litellm_spendlogs.jsonl"])
    assert s.stored == 0 and s.quarantined == 4


def test_openai_batch_profile_needs_an_account_and_uses_the_file_time(tmp_path):
    with pytest.raises(InputError, match="account_id"):
        build_field_map("openai-batch")
    log = tmp_path / "batch.jsonl"
    shutil.copy(FIX / "openai_batch_input.jsonl", log)
    os.utime(log, (1763284364, 1763284364))
    store = Store(tmp_path / "s")
    s = ingest_files(store, [log], field_map=build_field_map("openai-batch", account_id="org-acme"))
    assert (s.read, s.stored, s.quarantined) == (4, 3, 1), s.line()
    rows = _rows(store)
    assert {r[1] for r in rows} == {"org-acme"}
    assert {r[2].isoformat() for r in rows} == {"2025-11-16T09:12:44"}
    prompts = sorted(r[9] for r in rows)
    assert prompts[0] == "Label the sentiment of: 'great support, thanks'"
    assert "Label the sentiment of: 'meh'" in prompts  # /v1/completions body.prompt
    assert {json.loads(r[10])["custom_id"] for r in rows} == {"request-1", "request-2", "request-3"}
    # the same batch file submitted by another account is another set of requests, not duplicates
    s2 = ingest_files(store, [log], field_map=build_field_map("openai-batch", account_id="org-other"))
    assert s2.stored == 3 and s2.duplicates == 0
    again = ingest_files(store, [log], field_map=build_field_map("openai-batch", account_id="org-acme",
                                                                 timestamp="2026-01-01T00:00:00Z"))
    assert again.stored == 0 and again.duplicates == 3


def test_custom_field_map_with_dotted_paths_and_fallbacks(tmp_path, write_jsonl):
    recs = [{"who": {"key": "k1"}, "at": 1763284364, "req": {"text": "hello there"}, "tenant": "t1"},
            {"who": {"hash": "k2"}, "at": "2026-11-16T09:12:44Z", "req": {"text": "bonjour"}},
            {"who.key": "k3", "at": 1763284364, "req": {"text": "flattened header"}}]
    fm = build_field_map(fields={"account_id": ["who.key", "who.hash"], "timestamp": "at",
                                 "prompt": "req.text", "org_id": "tenant"})
    store = Store(tmp_path / "s")
    s = ingest_files(store, [write_jsonl("c.jsonl", recs)], field_map=fm)
    assert s.stored == 3, s.line()
    got = {r[1]: (r[4], r[9]) for r in _rows(store)}
    assert got == {"k1": ("t1", "hello there"), "k2": (None, "bonjour"), "k3": (None, "flattened header")}


def test_unknown_profile_and_field_are_input_errors():
    with pytest.raises(InputError, match="unknown log format 'splunk'"):
        build_field_map("splunk")
    with pytest.raises(InputError, match="'acount_id' is not a field"):
        build_field_map(fields={"acount_id": "x"})
    with pytest.raises(InputError, match="neither an ISO 8601 time"):
        build_field_map(timestamp="yesterday")
    assert build_field_map() is None
    assert set(PROFILES) == {"litellm", "openai-batch"}


def test_cli_format_flag_and_config_fields(tmp_path, capsys):
    store = tmp_path / "s"
    rc = main(["ingest", str(FIX / "litellm_spendlogs.jsonl"), "--format", "litellm", "--store", str(store)])
    assert rc == 0
    assert "3 stored" in capsys.readouterr().out
    cfg = tmp_path / "c.toml"
    cfg.write_text('[ingest]\nformat = "openai-batch"\naccount_id = "org-acme"\ntimestamp = "2026-11-16T09:00:00Z"\n')
    rc = main(["ingest", str(FIX / "openai_batch_input.jsonl"), "--config", str(cfg), "--store", str(store)])
    assert rc == 0
    assert "3 stored" in capsys.readouterr().out
    cfg.write_text('[ingest]\nformat = "openai-batch"\n')
    rc = main(["ingest", str(FIX / "openai_batch_input.jsonl"), "--config", str(cfg), "--store", str(store)])
    assert rc == 2 and "account_id" in capsys.readouterr().err
    cfg.write_text('[ingest.fields]\naccount_id = 5\n')
    rc = main(["ingest", str(FIX / "openai_batch_input.jsonl"), "--config", str(cfg), "--store", str(store)])
    assert rc == 2 and "[ingest.fields]" in capsys.readouterr().err
