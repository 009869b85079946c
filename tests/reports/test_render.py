"""Rendering: three files, a self-contained HTML page, escaping of hostile prompts in HTML and Markdown."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import duckdb
import pytest

from promptcov.errors import InputError
from promptcov.reports import build_report_data, write_report
from promptcov.reports.render_html import render_html
from promptcov.reports.render_md import render_md
from promptcov.reports.writer import to_jsonable
from tests.reports.report_store import BIDI_CHARS, HOSTILE_IMG, HOSTILE_SCRIPT, SECRETS, SHARED_IP, WEEK


@pytest.fixture(scope="module")
def data(store_db):
    con = duckdb.connect(str(store_db[0]), read_only=True)
    try:
        return build_report_data(con, week=WEEK)
    finally:
        con.close()


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Collect:
    p = _Collect()
    p.feed(page)
    return p


def test_write_report_writes_three_files(data, tmp_path):
    paths = write_report(data, tmp_path / "out")
    assert {k: p.name for k, p in paths.items()} == {
        "html": f"{WEEK}.html",
        "md": f"{WEEK}.md",
        "json": f"{WEEK}.json",
    }
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == to_jsonable(data)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left
    with pytest.raises(InputError):
        write_report({"week": "bad"}, tmp_path / "x")


def test_html_is_self_contained_and_script_free(data):
    page = render_html(data)
    parsed = _parse(page)
    tags = {t for t, _ in parsed.tags}
    assert not tags & {"script", "img", "link", "iframe", "object", "embed", "base", "form", "audio", "video"}
    for tag, attrs in parsed.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert all(v.startswith("#") for k, v in attrs.items() if k in ("href", "src", "xlink:href")), (
            tag,
            attrs,
        )
    assert "@import" not in page and "url(" not in page
    csp = [
        a["content"]
        for t, a in parsed.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in csp[0]
    assert sum(1 for t, _ in parsed.tags if t == "svg") >= 4  # bars, map, two sparklines


def test_hostile_prompts_are_shown_as_inert_text(data):
    page = render_html(data)
    text = "".join(_parse(page).text)
    assert HOSTILE_SCRIPT in text and HOSTILE_IMG in text  # visible as text...
    assert "<script" not in page.lower() and "<img" not in page.lower()  # ...never as markup
    for secret in SECRETS:
        assert secret not in page


def test_no_secret_address_or_bidi_control_in_any_output(data, store_db, tmp_path):
    paths = write_report(data, tmp_path / "out")
    outputs = {ext: p.read_text(encoding="utf-8") for ext, p in paths.items()}
    for ext, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, (ext, secret)
        for ch in BIDI_CHARS:
            assert ch not in text, (ext, hex(ord(ch)))
        assert not re.search(r"\[phone\]\.\d", text), ext  # an address prefix masked as a phone
        for placeholder in ("[ip]", "[phone]", "[ssn]", "[iban]", "[api-key]", "[U+202E]"):
            shown = placeholder.replace("[", "\\[").replace("]", "\\]") if ext == "md" else placeholder
            assert shown in text, (ext, placeholder)
    rubric = next(g for g in data["groups"]["items"] if g["group_id"] == "G-rubric")
    assert rubric["link_details"]["ip"] == ["[ip]"] and rubric["reasons"] == "shared ip [ip]"  # shared-address lines
    # --no-redact shows the data, but a display trick never
    con = duckdb.connect(str(store_db[0]), read_only=True)
    try:
        raw = build_report_data(con, week=WEEK, redact=False)
    finally:
        con.close()
    raw_out = [p.read_text(encoding="utf-8") for p in write_report(raw, tmp_path / "raw").values()]
    assert all(SHARED_IP in t for t in raw_out)
    assert not [ch for t in raw_out for ch in BIDI_CHARS if ch in t]


def test_every_section_is_rendered(data):
    text = " ".join(_parse(render_html(data)).text)
    for needle in [
        "Summary",
        "Capability areas",
        "Flagged groups",
        "G-hydra",
        "pm_shared_1",
        "nova-2",
        "Benign systematic traffic",
        "bench-1",
        "Prompt-space map",
        "New this week",
        "Method and thresholds",
        "1.0%",
        "under pressure",
    ]:
        assert needle in text, needle


def _unescaped(line: str, ch: str) -> int:
    return len(re.findall(rf"(?<!\\){re.escape(ch)}", line))


def test_markdown_escapes_injection(data):
    md = render_md(data)
    assert "<script" not in md and "<img" not in md and "<b>" not in md
    assert "](http" not in md.replace("\\](http", "")  # no live link or image
    assert "Ignore the table" in md and "&lt;script&gt;" in md
    lines = md.splitlines()
    for i, line in enumerate(lines):  # every table row has as many cells as its header
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|--"):
            width = _unescaped(line, "|")
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                assert _unescaped(lines[j], "|") == width, lines[j]
                j += 1
    hostile = next(x for x in lines if "Ignore the table" in x)
    assert _unescaped(hostile, "`") == 0 and _unescaped(hostile, "[") == 0


def test_render_copes_with_a_bare_store(tmp_path):
    from tests.reports.report_store import write_store

    path = tmp_path / "bare.duckdb"
    write_store(path, with_scores=False, with_map_points=False)
    con = duckdb.connect(str(path), read_only=True)
    data = build_report_data(con, week=WEEK)
    con.close()
    page = render_html(data)
    assert "promptcov map" in page and "promptcov score" in page
    assert "promptcov score" in render_md(data)


def test_groups_beyond_the_cards_go_to_a_compact_table(data):
    import copy

    from promptcov.reports.render_html import MAX_CARDS

    many = copy.deepcopy(data)
    extra = []
    for i in range(MAX_CARDS + 2):
        g = copy.deepcopy(data["groups"]["items"][0])
        g["group_id"] = f"G-extra-{i}"
        extra.append(g)
    many["groups"]["items"] = extra
    page = render_html(many)
    assert page.count('<article class="group">') == MAX_CARDS
    assert "More flagged groups" in page and "G-extra-6" in page
