"""Area colours and the high-value flag come from the taxonomy, not from a list in the report code."""

from __future__ import annotations

import inspect

import duckdb

from promptcov.coverage.areas.taxonomy import Taxonomy, default_taxonomy
from promptcov.reports import build_report_data, charts
from promptcov.reports.render_html import render_html
from promptcov.reports.render_md import render_md
from tests.reports.report_store import WEEK


def test_charts_hold_no_area_list():
    src = inspect.getsource(charts)
    assert not [a for a in default_taxonomy().ids if f'"{a}"' in src or f"'{a}'" in src]


def test_colours_follow_the_taxonomy_order():
    known = ["b_area", "a_area"]
    got = charts.area_colors(["a_area", "b_area", "zz", "unmapped"], known)
    assert got["b_area"] != got["a_area"]
    assert charts.area_colors(["b_area"], ["b_area"])["b_area"] == got["b_area"]  # first slot, either way
    assert charts.area_colors(["zz"], known)["zz"] == got["zz"]  # outside the taxonomy: stable hash colour
    assert got["unmapped"] == "#a0a0a0"


def test_report_takes_areas_and_high_value_from_the_taxonomy(store_db, tmp_path):
    extra = tmp_path / "extra.toml"
    extra.write_text(
        "version = 1\n[areas.general_chat]\nhigh_value = true\n"
        '[areas.legal_drafting]\ndescription = "contracts"\nhigh_value = true\nexemplars = ["Draft an NDA"]\n',
        encoding="utf-8",
    )
    tax = Taxonomy.load(extra=[extra])
    con = duckdb.connect(str(store_db[0]), read_only=True)
    try:
        default = build_report_data(con, week=WEEK)
        custom = build_report_data(con, week=WEEK, taxonomy=tax)
    finally:
        con.close()
    assert default["taxonomy"] == {
        "areas": default_taxonomy().ids,
        "high_value": default_taxonomy().high_value_ids,
    }
    assert (
        custom["taxonomy"]["areas"][-1] == "legal_drafting"
        and "legal_drafting" in custom["taxonomy"]["high_value"]
    )
    rows = {r["area"]: r for r in default["areas"]["rows"]}
    assert rows["rubric_grading"]["high_value"] and not rows["general_chat"]["high_value"]
    assert {r["area"]: r for r in custom["areas"]["rows"]}["general_chat"]["high_value"]
    assert "*high-value*" in render_md(default) and 'class="hv"' in render_html(default)
