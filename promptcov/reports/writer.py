"""Write the three report files -- ``WEEK.html``, ``WEEK.md`` and ``WEEK.json`` -- atomically."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from promptcov.errors import InputError
from promptcov.io import atomic_write
from promptcov.reports.redact import neutralise_bidi
from promptcov.reports.render_html import render_html
from promptcov.reports.render_md import render_md
from promptcov.reports.weeks import parse_week

__all__ = ["write_report", "to_jsonable"]

logger = logging.getLogger(__name__)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types only: numpy scalars become Python numbers, NaN/inf become ``None``.

    Strings (keys too) have their bidi override characters neutralised, as in the HTML and Markdown.
    """
    if isinstance(obj, dict):
        return {neutralise_bidi(str(k)): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, str):
        return neutralise_bidi(obj)
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    return neutralise_bidi(str(obj))


def write_report(data: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Render ``data`` and write ``out_dir/WEEK.{html,md,json}``; returns ``{"html": path, ...}``.

    Each file is written to a temporary name and moved into place, so a reader never sees a
    half-written report and a failed run leaves last week's files untouched.
    """
    week = data.get("week")
    if not isinstance(week, str):
        raise InputError("report data has no 'week'; build it with build_report_data()")
    parse_week(week)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    texts = {
        "html": render_html(data),
        "md": render_md(data),
        "json": json.dumps(to_jsonable(data), indent=1, ensure_ascii=False, allow_nan=False) + "\n",
    }
    paths = {}
    for ext, text in texts.items():
        path = out / f"{week}.{ext}"
        with atomic_write(path) as fh:
            fh.write(text)
        paths[ext] = path
    logger.info("wrote report %s to %s", week, out)
    return paths
