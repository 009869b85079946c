"""Redaction, clipping and escaping of attacker-controlled text."""

from __future__ import annotations

import pytest

from promptcov.reports.redact import (
    clip,
    esc_html,
    esc_md,
    iban_ok,
    luhn_ok,
    neutralise_bidi,
    redact_pii,
    safe_text,
    ssn_ok,
)


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


# issue 9 item 8: one positive and one near miss per pattern. The near misses are the ordinary
# text a prompt is full of (versions, timestamps, counts, code) and must come back unchanged.
@pytest.mark.parametrize(
    ("text", "secret", "placeholder"),
    [
        ("from 198.51.100.7 today", "198.51.100.7", "[ip]"),
        ("peer 192.168.100.170 joined", "100.170", "[ip]"),  # was "[phone].170"
        ("addr 2001:db8::8a2e:370:7334 up", "8a2e:370:7334", "[ip]"),
        ("link-local fe80::1ff:fe23:4567:890a%eth0.", "fe80::1ff", "[ip]"),
        ("mapped ::ffff:203.0.113.9 ok", "203.0.113.9", "[ip]"),
        ("E.164 +14155550132 ok", "4155550132", "[phone]"),
        ("intl 004915112345678 ok", "4915112345678", "[phone]"),
        ("my phone is 4155550132", "4155550132", "[phone]"),
        ("call me on 07700900123.", "07700900123", "[phone]"),
        ("SSN 078051120 on file", "078051120", "[ssn]"),
        ("social security number: 078 05 1120", "078 05 1120", "[ssn]"),
        ("ssn 078-05-1120", "078-05-1120", "[ssn]"),
        ("IBAN DE89 3704 0044 0532 0130 00 thanks", "3704 0044", "[iban]"),
        ("pay GB82WEST12345698765432 now", "GB82WEST12345698765432", "[iban]"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc", "[api-key]"),
        ("restricted rk_live_51Habcdefghijklmno", "rk_live_51H", "[api-key]"),
        ("restricted rk_test_51Habcdefghijklmno", "rk_test_51H", "[api-key]"),
        ("hub hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefghij", "[api-key]"),
    ],
)
def test_redacts_addresses_phones_ids_and_tokens(text, secret, placeholder):
    out = redact_pii(text)
    assert secret not in out, out
    assert placeholder in out, out


@pytest.mark.parametrize(
    "text",
    [
        "upgrade to version 1.2.3 or v10.0.0.1",  # versions (the "v" one has four parts)
        "octets 10.20.300.170 are out of range",  # not an address: no "[phone].170" either
        "at 10:30:00 on 2026-11-16T09:12:44Z",  # times are not IPv6
        "C++ std::vector and a::b and ::1",  # scope operators, loopback
        "epoch 1763284364 and 1763284364123 ms",  # timestamps
        "order 4155550132 shipped",  # a bare 10-digit id without a phone word
        "count 078051120 rows",  # 9 digits without "SSN"
        "SSN 000000000 is a placeholder",  # SSN area 000 is never issued
        "IBAN GB83WEST12345698765432 has a bad check digit",  # fails mod-97
        "the sk_live_mode flag and rk_test_x",  # too short to be keys
        "from huggingface_hub import hf_hub_download",  # an hf_ name, not a token
        "INT_MAX is 2147483647",
    ],
)
def test_near_misses_are_left_alone(text):
    assert redact_pii(text) == text


def test_iban_and_ssn_checks():
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and iban_ok("DE89370400440532013000")
    assert not iban_ok("GB82 WEST 1234 5698 7654 33") and not iban_ok("DE89")
    assert ssn_ok("078", "05", "1120") and not ssn_ok("000", "12", "3456") and not ssn_ok("900", "12", "3456")


BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize("ch", BIDI)
def test_bidi_controls_are_neutralised_everywhere(ch):
    text = f"invoice{ch}fdp.exe"
    marker = f"[U+{ord(ch):04X}]"
    for out in (
        neutralise_bidi(text),
        safe_text(text, redact=False),
        safe_text(text, redact=True),
        esc_html(text),
    ):
        assert ch not in out and marker in out
    assert ch not in esc_md(text) and "U+" in esc_md(text)
    assert neutralise_bidi("plain العربية text") == "plain العربية text"  # RTL script itself is fine
