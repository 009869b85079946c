"""Example prompts on a group card: distinct, spread over the group's templates and areas."""

from __future__ import annotations

import duckdb

from promptcov.reports import build_report_data
from promptcov.reports.examples import normalise_text, pick_examples
from tests.reports.report_store import DUP_EXAMPLE, WEEK, with_duplicate_examples

DUP = DUP_EXAMPLE


def test_normalise_text():
    assert normalise_text("  Fix  the\tBUG. ") == normalise_text("fix the bug") == "fix the bug"
    assert normalise_text("ｆｉｘ") == "fix"  # NFKC folds full-width letters


def test_duplicates_are_shown_once():
    got = pick_examples([DUP, DUP, DUP.upper() + "  ", DUP + "."], [], k=3)
    assert got == [DUP]


def test_round_robin_over_templates_and_areas():
    cands = [
        ("T1", "coding", "fix bug 1", 50),
        ("T1", "coding", "fix bug 2", 40),
        ("T1", "coding", "fix bug 3", 30),
        ("T2", "tool_use", "call tool 1", 9),
        ("T2", "math_reasoning", "solve 1", 5),
    ]
    assert pick_examples([], cands, k=3) == ["fix bug 1", "call tool 1", "solve 1"]
    assert pick_examples([], cands, k=5) == ["fix bug 1", "call tool 1", "solve 1", "fix bug 2", "fix bug 3"]
    # an evidence example leads its own bucket; one not in this week's traffic comes first
    assert pick_examples(["fix bug 3", "older one"], cands, k=3) == ["older one", "fix bug 3", "call tool 1"]


def test_distinctness_is_judged_on_the_shown_text():
    cands = [
        ("T1", "a", "key sk-aaaaaaaaaaaaaaaaaaaa1 please", 3),
        ("T1", "a", "key sk-bbbbbbbbbbbbbbbbbbbb2 please", 2),
    ]
    assert pick_examples([], cands, k=3, show=lambda s: s.split(" sk-")[0]) == ["key"]


def test_group_card_examples_are_distinct_and_spread(store_db, tmp_path):
    """Regression: the score run's evidence held the same prompt three times and the card showed
    it three times; the group's second template and area were never shown."""
    path = tmp_path / "dups.duckdb"
    with_duplicate_examples(store_db[0], path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        data = build_report_data(con, week=WEEK)
        hydra = next(g for g in data["groups"]["items"] if g["group_id"] == "G-hydra")
        shown = hydra["examples"]
        assert len(shown) == 3 and len({normalise_text(x) for x in shown}) == 3, shown
        assert shown[0] == DUP_EXAMPLE
        got = con.execute(
            "SELECT DISTINCT m.template_id, m.capability FROM texts t JOIN text_map m USING (text_id) "
            f"WHERE t.prompt IN ({', '.join('?' for _ in shown[1:])})",
            shown[1:],
        ).fetchall()
    finally:
        con.close()
    assert sorted(got) == [("T-agent", "agentic_coding"), ("T-tool", "tool_use")]
    assert {t["template_id"] for t in hydra["templates"]} == {"T-agent", "T-tool"}
