"""Make attacker-controlled text safe to show: PII redaction, truncation and escaping.

Everything a report shows from the logs -- prompts, cluster keywords, template skeletons,
account ids, model names -- was written by someone we suspect of abuse. Three separate steps
keep it harmless:

1. :func:`redact_pii` replaces obvious personal data and secrets (e-mail and IP addresses,
   phone numbers, SSNs, IBANs, card-like numbers, API keys and bearer tokens, long hex/base64
   strings) with a ``[kind]`` placeholder. Reports are forwarded to policy and legal; a leaked customer key in
   an example prompt must not travel with them. Applied when the data dict is built, so the
   JSON is redacted too (``redact=False`` turns it off).
2. :func:`clip` collapses whitespace and truncates to a readable length (default 240 chars),
   so a 50 kB prompt cannot swamp the page; it also neutralises bidi override characters
   (:func:`neutralise_bidi`), redaction or not.
3. :func:`esc_html` / :func:`esc_md` escape at render time, so ``<script>`` or
   ``onerror=`` in a prompt stays inert text and Markdown link/table syntax cannot be
   injected. The renderers escape *every* string they take from the data dict.

>>> esc_html(clip(redact_pii("mail bob@example.com <script>x</script>")))
'mail [email] &lt;script&gt;x&lt;/script&gt;'
>>> esc_md("a|b `c` [d](e)")
'a\\\\|b \\\\`c\\\\` \\\\[d\\\\](e)'
"""

from __future__ import annotations

import html
import ipaddress
import re

__all__ = [
    "redact_pii",
    "neutralise_bidi",
    "clip",
    "safe_text",
    "esc_html",
    "esc_md",
    "luhn_ok",
    "iban_ok",
    "ssn_ok",
    "MAX_CHARS",
    "REDACTED_KINDS",
]

#: default length of a prompt shown in a report
MAX_CHARS = 240
#: what :func:`redact_pii` hides, in the words the reports use
REDACTED_KINDS = (
    "e-mail and IP addresses, phone numbers, social security numbers, IBANs, card numbers, "
    "API keys, tokens and other secrets"
)

_SECRET_PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
        "[private-key]",
    ),
    ("bearer", re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [token]"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), "[token]"),
    ("openai_style", re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "[api-key]"),
    # Stripe secret and restricted keys: sk_live_/sk_test_/rk_live_/rk_test_ + 10 or more letters/digits
    ("stripe", re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"), "[api-key]"),
    # Hugging Face access tokens: hf_ + 30 or more letters/digits (``hf_hub_download`` is not one)
    ("huggingface", re.compile(r"\bhf_[A-Za-z0-9]{30,}"), "[api-key]"),
    ("aws_key_id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"), "[api-key]"),
    ("github", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"), "[api-key]"),
    ("slack", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "[api-key]"),
    ("google", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), "[api-key]"),
    (
        "assignment",
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|token)"
            r"(\s*[:=]\s*['\"]?)([^\s'\"]{6,})"
        ),
        r"\1\2[secret]",
    ),
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "[email]"),
    ("hex", re.compile(r"\b[0-9a-fA-F]{32,}\b"), "[secret]"),
]

# 40+ chars of base64/url-safe alphabet holding digits and both letter cases: a key, not a word.
_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{40,}={0,2}")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# not part of a longer dotted number (an address, a version): "[phone].170" must never happen
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d\.)(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{2,4}[\s.-])\d{2,4}[\s.-]?\d{3,4}"
    r"(?![\w])(?!\.\d)"
)
# E.164 written without separators: "+" and 8-15 digits, or the "00" international prefix
_E164 = re.compile(r"(?<![\w+])(?:\+|00)[1-9]\d{7,14}(?![\w])(?!\.\d)")
# a bare run of 9-15 digits is a phone number only when the text says so just before it
_PHONE_WORDS = (
    r"phone|tel|telephone|mobile|cell|cellphone|call|ring|dial|text|sms|whatsapp|signal|fax|contact|number"
)
_PHONE_CONTEXT = re.compile(
    rf"(?i)((?<!\[)\b(?:{_PHONE_WORDS})\b[^\d\n\[\]]{{0,25}})(?<![\w.])(\d{{9,15}})(?![\w])(?!\.\d)"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?<!\d\.){_OCTET}(?:\.{_OCTET}){{3}}(?![\w])(?!\.\d)")
# candidates only (hex groups, colons, an optional embedded IPv4 and zone); validated by ipaddress
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f:]{2,39}(?:\d{1,3}(?:\.\d{1,3}){3})?"
    r"(?:%[\w-]+)?(?![\w:]|\.\d)"
)
# social security numbers: 123-45-6789, or 9 digits (or 3-2-4 with spaces) right after "SSN"
_SSN_DASHED = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
_SSN_CONTEXT = re.compile(
    r"(?i)((?<!\[)\b(?:ssn|ss#|social[ -]security(?:[ -](?:no|number|#))?|tax[ -]?id|tin)\b[^\d\n\[\]]{0,20})"
    r"(?<![\w.])(\d{3})[ ]?(\d{2})[ ]?(\d{4})(?![\w])(?!\.\d)"
)
# IBAN: country, 2 check digits, 11-30 letters/digits, written solid or in groups of four
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)\b")
_WS = re.compile(r"\s+")
# bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the
# direction marks (U+200E, U+200F, U+061C): "Trojan Source" text that displays in another order
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` passes the Luhn checksum that payment card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """True when ``text`` (spaces ignored) is an IBAN whose check digits pass the ISO 13616 mod-97 test."""
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not (s[:2].isalpha() and s[2:4].isdigit() and s.isalnum() and s.isascii()):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """True for a structurally valid US SSN (no 000/666/9xx area, no 00 group, no 0000 serial)."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def neutralise_bidi(text: str) -> str:
    """Replace bidi override/isolate characters with a visible ``[U+202E]``-style marker.

    A right-to-left override in an account id or a prompt makes the text *display* in another
    order than it reads ("Trojan Source"); shown as a marker, the trick is visible and inert.
    """
    return _BIDI.sub(lambda m: f"[U+{ord(m.group(0)):04X}]", text) if text else text


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else m.group(0)


def _phone(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "[phone]" if 9 <= len(digits) <= 15 else m.group(0)


def _b64(m: re.Match[str]) -> str:
    s = m.group(0)
    mixed = any(c.isdigit() for c in s) and any(c.islower() for c in s) and any(c.isupper() for c in s)
    return "[secret]" if mixed else s


def _iban(m: re.Match[str]) -> str:
    """The longest prefix (whole groups) that passes mod-97 becomes ``[iban]``; the rest is kept."""
    s = m.group(0)
    parts = s.split(" ")
    for k in range(len(parts), 2, -1) if len(parts) > 1 else [1]:
        head = " ".join(parts[:k])
        if iban_ok(head):
            return "[iban]" + s[len(head) :]
    return s


def _ipv6(m: re.Match[str]) -> str:
    s = m.group(0)
    groups = [g for g in s.split("%")[0].split(":") if g]
    if len(groups) < 2 or not any(c.isdigit() for c in s):
        return s  # "::", "a::b" and friends: too little to be an address worth hiding
    try:
        ipaddress.IPv6Address(s.split("%")[0])
    except ValueError:
        return s
    return "[ip]"


def _ssn_dashed(m: re.Match[str]) -> str:
    return "[ssn]" if ssn_ok(*m.groups()) else m.group(0)


def _ssn_context(m: re.Match[str]) -> str:
    return m.group(1) + "[ssn]" if ssn_ok(*m.groups()[1:]) else m.group(0)


def redact_pii(text: str) -> str:
    """Replace obvious personal data and credentials in ``text`` with ``[kind]`` placeholders.

    Covers e-mail addresses; IPv4 and IPv6 addresses; phone numbers (9-15 digits with the usual
    separators, E.164 ``+14155550132`` / ``004915...`` written without them, and a bare run of
    9-15 digits right after a word such as "phone", "call" or "number"); US social security
    numbers (``123-45-6789``, or 9 digits after "SSN"); IBANs passing the mod-97 check;
    card-like numbers (13-19 digits passing the Luhn check); API keys (``sk-...``,
    ``sk_live_``/``rk_live_``/``rk_test_``, ``hf_...``, ``AKIA...``, GitHub, Slack, Google),
    bearer tokens and JWTs, ``password=...``-style assignments, PEM private keys and long
    hex/base64 strings. It is a best-effort net for *obvious* data, tuned to leave ordinary
    numbers, versions, timestamps and code alone; it is not a DLP system.

    >>> redact_pii("call +1 415-555-0132 or use key sk-abcdefghijklmnop1234")
    'call [phone] or use key [api-key]'
    >>> redact_pii("from 198.51.100.170 and 2001:db8::8a2e:370:7334, version 1.2.3")
    'from [ip] and [ip], version 1.2.3'
    """
    if not text:
        return text
    out = text
    for _name, pattern, repl in _SECRET_PATTERNS:
        out = pattern.sub(repl, out)
    out = _B64.sub(_b64, out)
    out = _IBAN.sub(_iban, out)
    out = _IPV6.sub(_ipv6, out)
    out = _IPV4.sub("[ip]", out)
    out = _SSN_DASHED.sub(_ssn_dashed, out)
    out = _SSN_CONTEXT.sub(_ssn_context, out)
    out = _E164.sub("[phone]", out)
    out = _CARD.sub(_card, out)
    out = _PHONE.sub(_phone, out)
    out = _PHONE_CONTEXT.sub(r"\1[phone]", out)
    return out


def clip(text: str | None, limit: int = MAX_CHARS) -> str:
    """Collapse runs of whitespace to one space and cut to ``limit`` characters (adds '…').

    Bidi override characters are neutralised too (:func:`neutralise_bidi`), with or without
    redaction: a display trick is never wanted in a report.
    """
    if text is None:
        return ""
    flat = neutralise_bidi(_WS.sub(" ", str(text)).strip())
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 1, 0)].rstrip() + "…"


def safe_text(text: str | None, redact: bool = True, limit: int = MAX_CHARS) -> str:
    """The form in which log text enters the report data: redacted (optionally), then clipped.

    Redaction runs before truncation so that a secret cut in half by the limit is still caught.
    """
    s = "" if text is None else str(text)
    if redact:
        s = redact_pii(s)
    return clip(s, limit)


def esc_html(value: object) -> str:
    """Escape any value for HTML text *and* attribute context (``& < > " '``); neutralise bidi overrides."""
    return html.escape(neutralise_bidi("" if value is None else str(value)), quote=True)


_MD_ALWAYS = re.compile(r"([\\`*\[\]|~])")
# "_" only opens/closes emphasis at a word edge (CommonMark), so "tool_use" stays readable
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_MD_LINE_START = re.compile(r"^(\s*)(?:([#+\-=])|(\d+)([.)]))")


def esc_md(value: object) -> str:
    """Escape any value for a Markdown table cell, list item or paragraph.

    Newlines become spaces (a newline would end a table row); ``& < >`` become HTML entities
    (no raw HTML, no autolinks); backslashes, backticks, pipes, brackets, ``*`` and ``~`` are
    backslash-escaped, as is ``_`` at a word edge; a leading ``#``, ``+``, ``-``, ``=`` or
    ``1.`` is escaped too. So a prompt cannot open a code span, split a table cell, forge a
    link or image (no unescaped ``[``), start a heading or list, or inject HTML; bidi override
    characters are neutralised (:func:`neutralise_bidi`).
    """
    s = "" if value is None else str(value)
    s = neutralise_bidi(_WS.sub(" ", s))
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_ALWAYS.sub(r"\\\1", s)
    s = _MD_UNDERSCORE.sub(r"\\_", s)
    m = _MD_LINE_START.match(s)
    if m is None:
        return s
    head = m.group(1) + ("\\" + m.group(2) if m.group(2) else m.group(3) + "\\" + m.group(4))
    return head + s[m.end() :]
