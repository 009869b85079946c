"""Redaction, clipping and escaping of attacker-controlled text."""

from __future__ import annotations

import pytest

from promptcov.reports.redact import clip, esc_html, esc_md, luhn_ok, redact_pii, safe_text


@pytest.mark.parametrize(
    ("text", "secret", "placeholder"),
    [
        ("write to jane.doe+x@mail.example.co.uk today", "jane.doe+x@mail.example.co.uk", "[email]"),
        (
            "key sk-proj-abcdefghijklmnopqrstuv123456 here",
            "sk-proj-abcdefghijklmnopqrstuv123456",
            "[api-key]",
        ),
        ("AWS AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE", "[api-key]"),
        (
            "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "[api-key]",
        ),
        ("Authorization: Bearer abc.def-ghi_jkl~12345", "abc.def-ghi_jkl~12345", "Bearer [token]"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNH", "eyJhbGciOiJIUzI1NiJ9", "[token]"),
        ("call +1 415-555-0132 now", "415-555-0132", "[phone]"),
        ("tel (020) 7946 0958", "7946 0958", "[phone]"),
        ("card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111", "[card]"),
        ("password=hunter2hunter2 ok", "hunter2hunter2", "password=[secret]"),
        (
            "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "9f86d081884c7d659a2f",
            "[secret]",
        ),
        ("blob QWxhZGRpbjpvcGVuIHNlc2FtZQ0KQWxhZGRpbjpvcGVuIHNlc2FtZQ9x end", "QWxhZGRpbjpvcGVu", "[secret]"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow", "[private-key]"),
    ],
)
def test_redacts_obvious_personal_data(text, secret, placeholder):
    out = redact_pii(text)
    assert secret not in out
    assert placeholder in out


@pytest.mark.parametrize(
    "text",
    [
        "What is 123456 * 789?",
        "Meeting on 2026-11-16 at 10:30, room 4.2",
        "def f(x):\n    return x ** 2  # version 1.2.3",
        "Solve for x: 3x + 7 = 22, then explain step by step.",
        "The year 1969 and the number 4111 are fine.",
        "ISBN 978-0-13-468599-1 and order 12345",
        "supercalifragilisticexpialidociousandevenlongerwordsthatkeepgoing",
    ],
)
def test_leaves_ordinary_text_alone(text):
    assert redact_pii(text) == text


def test_luhn():
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    # a 16-digit number failing Luhn is not redacted as a card
    assert "[card]" not in redact_pii("id 4111 1111 1111 1112")


def test_clip_collapses_whitespace_and_truncates():
    assert clip("a\n\n  b\tc") == "a b c"
    long = "x" * 1000
    out = clip(long, 240)
    assert len(out) == 240 and out.endswith("…")
    assert clip(None) == ""


def test_safe_text_redacts_before_clipping():
    # the key straddles the cut: it must still be caught
    text = "y" * 230 + " sk-abcdefghijklmnopqrstuvwxyz"
    out = safe_text(text, redact=True, limit=240)
    assert "sk-abc" not in out
    assert "sk-abc" in safe_text(text, redact=False, limit=1000)


def test_esc_html_makes_markup_inert():
    s = esc_html("<script>alert(1)</script><img src=x onerror=\"a('1')\">")
    assert "<" not in s and ">" not in s and '"' not in s and "'" not in s
    assert "&lt;script&gt;" in s


def test_esc_md_blocks_markdown_injection():
    s = esc_md("a | b `code` [link](http://x) ![i](http://x/i.png) <b>x</b> *em* _u_\nnext")
    assert "\n" not in s
    for raw in ["|", "`", "[", "]", "*"]:
        # every occurrence is backslash-escaped
        assert all(s[i - 1] == "\\" for i, ch in enumerate(s) if ch == raw)
    assert "<" not in s
    assert "&lt;b&gt;x&lt;/b&gt;" in s and ">" not in s
    assert "\\_u\\_" in s  # emphasis underscores escaped...
    assert esc_md("tool_use") == "tool_use"  # ...intraword ones left readable


@pytest.mark.parametrize(
    ("text", "want"), [("# head", "\\# head"), ("1. item", "1\\. item"), ("- x", "\\- x")]
)
def test_esc_md_blocks_line_start_markup(text, want):
    assert esc_md(text) == want
