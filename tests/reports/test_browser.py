"""The HTML report in a real browser: headless Chromium, loaded from file://, network off.

Chromium comes from ``.ci/install-chromium.sh``. Locally the test skips when the binary is
missing; in CI (``CI`` set) a missing binary is a failure. A control page with the same hostile
markup *unescaped* proves first that scripts do run in this browser set-up and that the
console-error and DOM checks would catch them -- otherwise "the script did not run" would prove
nothing.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from promptcov.reports import build_report_data, write_report
from promptcov.reports.examples import normalise_text
from promptcov.reports.render_html import CSP, render_html
from tests.reports.report_store import HOSTILE_IMG, HOSTILE_SCRIPT, WEEK, with_duplicate_examples

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    # network off: every request that is not file:// goes to a closed local port
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=1500",
]
_CONSOLE = re.compile(r":CONSOLE[:(]")


def _chromium() -> str:
    path = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("CI is set but /usr/bin/chromium is missing: run .ci/install-chromium.sh first")
    pytest.skip(
        "chromium is not installed (run .ci/install-chromium.sh; with CI set this test fails instead)"
    )


def _run(tmp: Path, name: str, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{name}"
    profile.mkdir()
    cmd = [_chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if _CONSOLE.search(line)]


@pytest.fixture(scope="module")
def report(store_db, tmp_path_factory) -> Path:
    con = duckdb.connect(str(store_db[0]), read_only=True)
    try:
        data = build_report_data(con, week=WEEK)
    finally:
        con.close()
    return write_report(data, tmp_path_factory.mktemp("report"))["html"]


def test_control_page_shows_the_checks_can_fail(tmp_path):
    page = tmp_path / "control.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><title>ok</title></head><body><p>{HOSTILE_SCRIPT}{HOSTILE_IMG}</p>"
        "<script>console.error('control-error')</script></body></html>",
        encoding="utf-8",
    )
    res = _run(tmp_path, "control", page.as_uri(), "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "<title>PWNED</title>" in res.stdout
    assert 'data-pwned="1"' in res.stdout
    assert any("control-error" in line for line in _console(res.stderr))


def test_report_loads_offline_without_errors_and_stays_inert(report, tmp_path):
    res = _run(tmp_path, "dom", report.as_uri(), "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert _console(res.stderr) == []
    assert f"<title>promptcov report {WEEK}</title>" in dom
    assert "PWNED</title>" not in dom
    assert not re.search(r"<body[^>]*data-pwned", dom)
    assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt;" in dom  # shown as text
    assert dom.count("<svg") >= 4  # stacked bars, map, one sparkline per group
    assert "<circle" in dom and "<rect" in dom


def test_screenshot_is_not_blank(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    res = _run(tmp_path, "shot", report.as_uri(), f"--screenshot={shot}", "--window-size=1280,4000")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    assert _console(res.stderr) == []
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 4000)
    small = img.resize((320, 1000))
    colours = small.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200
    non_white = sum(n for n, c in colours if sum(c) < 720)
    assert non_white / (320 * 1000) > 0.05
    # the top of the page (title, summary, cards) is drawn, not an empty band
    top = img.crop((0, 0, 1280, 600)).resize((320, 150)).getcolors(maxcolors=1 << 20)
    assert top is not None and len(top) > 30


# Measures the rendered group cards and writes the figures into the DOM, where --dump-dom reads them.
# The report itself forbids scripts (CSP); the measured copy only adds this script and allows it.
_MEASURE = """<script>
const out = {vw: window.innerWidth, cards: []};
document.querySelectorAll('article.group').forEach(a => {
  const col = name => [...a.querySelectorAll('.ev h4')].find(h => h.textContent.trim().toLowerCase() === name);
  const box = h => h ? h.parentElement.getBoundingClientRect() : null;
  const t = box(col('templates')), l = box(col('link evidence'));
  out.cards.push({templates: t && Math.round(t.width), links: l && Math.round(l.width),
                  stacked: !!(t && l && t.top >= l.bottom),
                  examples: [...a.querySelectorAll('ul.ex li')].map(li => li.textContent)});
});
document.body.setAttribute('data-measure', JSON.stringify(out));
</script>"""


@pytest.fixture(scope="module")
def wide_data(store_db, tmp_path_factory):
    """The report of a store whose evidence repeats one example, with long shared values on the
    first card: what squeezed the templates column into a strip of one or two words per line."""
    path = tmp_path_factory.mktemp("dups") / "catalog.duckdb"
    with_duplicate_examples(store_db[0], path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        data = build_report_data(con, week=WEEK)
    finally:
        con.close()
    data = copy.deepcopy(data)
    g = data["groups"]["items"][0]
    g["link_types"] = {"near_duplicate": 340, **g["link_types"], "ip": 7}
    g["link_details"] = {
        "near_duplicate": [
            "Act as an autonomous agent and fix the failing build of the",
            "Please act as an autonomous coding agent with shell access and",
        ],
        "template": ["T-agent-with-a-rather-long-template-identifier-0001"],
        "payment": ["pm_shared_1_abcdefghijklmnopqrstuvwxyz"],
        "ip": ["[ip]", "[ip]"],
    }
    return data


def _measure(tmp: Path, data: dict, width: int) -> dict:
    page = render_html(data)
    page = page.replace(CSP, CSP.replace("default-src 'none'", "default-src 'none'; script-src 'unsafe-inline'"))
    path = tmp / f"measure-{width}.html"
    path.write_text(page.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    res = _run(tmp, f"measure-{width}", path.as_uri(), "--dump-dom", f"--window-size={width},3000")
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r'data-measure="([^"]*)"', res.stdout)
    assert m, "the measuring script did not run"
    return json.loads(html.unescape(m.group(1)))


def test_group_cards_give_the_templates_room(wide_data, tmp_path):
    """At 1280 px the templates column sits beside the evidence table at >= 250 px (it was 107 px);
    on a narrow page the two stack, each at full width."""
    wide = _measure(tmp_path, wide_data, 1280)
    assert wide["vw"] == 1280 and len(wide["cards"]) == 2
    for card in wide["cards"]:
        assert card["templates"] >= 250 and card["links"] >= 250, card
        assert not card["stacked"], card
    narrow = _measure(tmp_path, wide_data, 700)
    for card in narrow["cards"]:
        assert card["stacked"] and card["templates"] == card["links"] >= 250, card
    # the examples the browser shows are distinct in every card
    for card in wide["cards"]:
        shown = [normalise_text(x) for x in card["examples"]]
        assert shown and len(set(shown)) == len(shown), card["examples"]
    shot = tmp_path / "cards.png"
    page = tmp_path / "cards.html"
    page.write_text(render_html(wide_data), encoding="utf-8")
    res = _run(tmp_path, "cards", page.as_uri(), f"--screenshot={shot}", "--window-size=1280,3000")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    assert _console(res.stderr) == []
    if os.environ.get("PROMPTCOV_SCREENSHOT_DIR"):  # keep it for a person to look at
        shutil.copy(shot, Path(os.environ["PROMPTCOV_SCREENSHOT_DIR"]) / "group_cards_1280.png")
