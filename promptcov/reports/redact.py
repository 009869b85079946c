"""Make attacker-controlled text safe to show: PII redaction, truncation and escaping.

Everything a report shows from the logs -- prompts, cluster keywords, template skeletons,
account ids, model names -- was written by someone we suspect of abuse. Three separate steps
keep it harmless:

1. :func:`redact_pii` replaces obvious personal data and secrets (e-mail addresses, phone
   numbers, card-like numbers, API keys and bearer tokens, long hex/base64 strings) with a
   ``[kind]`` placeholder. Reports are forwarded to policy and legal; a leaked customer key in
   an example prompt must not travel with them. Applied when the data dict is built, so the
   JSON is redacted too (``redact=False`` turns it off).
2. :func:`clip` collapses whitespace and truncates to a readable length (default 240 chars),
   so a 50 kB prompt cannot swamp the page.
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
import re

__all__ = ["redact_pii", "clip", "safe_text", "esc_html", "esc_md", "luhn_ok", "MAX_CHARS"]

#: default length of a prompt shown in a report
MAX_CHARS = 240

_SECRET_PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
        "[private-key]",
    ),
    ("bearer", re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [token]"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), "[token]"),
    ("openai_style", re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "[api-key]"),
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
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{2,4}[\s.-])\d{2,4}[\s.-]?\d{3,4}(?![\w])"
)
_WS = re.compile(r"\s+")


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


def redact_pii(text: str) -> str:
    """Replace obvious personal data and credentials in ``text`` with ``[kind]`` placeholders.

    Covers e-mail addresses, phone numbers (9-15 digits with the usual separators), card-like
    numbers (13-19 digits passing the Luhn check), API keys (``sk-...``, ``AKIA...``, GitHub,
    Slack, Google), bearer tokens and JWTs, ``password=...``-style assignments, PEM private
    keys and long hex/base64 strings. It is a best-effort net for *obvious* data, tuned to
    leave ordinary numbers, dates and code alone; it is not a DLP system.

    >>> redact_pii("call +1 415-555-0132 or use key sk-abcdefghijklmnop1234")
    'call [phone] or use key [api-key]'
    """
    if not text:
        return text
    out = text
    for _name, pattern, repl in _SECRET_PATTERNS:
        out = pattern.sub(repl, out)
    out = _B64.sub(_b64, out)
    out = _CARD.sub(_card, out)
    out = _PHONE.sub(_phone, out)
    return out


def clip(text: str | None, limit: int = MAX_CHARS) -> str:
    """Collapse runs of whitespace to one space and cut to ``limit`` characters (adds '…')."""
    if text is None:
        return ""
    flat = _WS.sub(" ", str(text)).strip()
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
    """Escape any value for HTML text *and* attribute context (``& < > " '``)."""
    return html.escape("" if value is None else str(value), quote=True)


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
    link or image (no unescaped ``[``), start a heading or list, or inject HTML.
    """
    s = "" if value is None else str(value)
    s = _WS.sub(" ", s)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_ALWAYS.sub(r"\\\1", s)
    s = _MD_UNDERSCORE.sub(r"\\_", s)
    m = _MD_LINE_START.match(s)
    if m is None:
        return s
    head = m.group(1) + ("\\" + m.group(2) if m.group(2) else m.group(3) + "\\" + m.group(4))
    return head + s[m.end() :]
