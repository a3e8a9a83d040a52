"""Jiaoying's drafts of information reports (初报/续报/终报), from a run's facts, for the duty officer to edit.

The wording is a Jinja2 template (``templates/info_report.txt.j2``) a district can change without code;
a missing value is a rendering error, never a blank in a report sent up the chain.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from responses.measures.core import REPORT_ZH
from responses.reports.core import KIND_ZH, ReportFacts, report_title

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # Plain text, not HTML (the console escapes when it shows it); StrictUndefined: no silent gaps.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              autoescape=False, trim_blocks=True, keep_trailing_newline=True)


def render_report_draft(f: ReportFacts) -> str:
    """Jiaoying's draft of one information report; the duty officer edits it before sending."""
    if f.warning_headline:
        warning_sentence = f"{f.warning_sent_local}，“{f.warning_headline}”（{f.level_zh}{f.hazard_zh}预警）。"
    else:
        warning_sentence = f"{f.warning_sent_local}，发布{f.level_zh}{f.hazard_zh}预警。"
    figures = [(REPORT_ZH.get(k, k), v) for k, v in (f.figures or {}).items() if v]
    ctx = {
        "title": report_title(f.kind, f.seq, f.hazard_zh, f.level_zh),
        "kind": f.kind.value,
        "kind_zh": KIND_ZH[f.kind],
        "reporting_unit": f.reporting_unit,
        "now_local": f.now_local,
        "warning_sentence": warning_sentence,
        "started_local": f.started_local,
        "response_level": f.response_level,
        "run_number": f.run_number,
        "areas": list(f.areas),
        "calls_total": f.calls_total,
        "calls_answered": f.calls_answered,
        "calls_overdue": f.calls_overdue,
        "measures": [dict(m) for m in f.measures],
        "figures": figures,
        "closed_local": f.closed_local,
    }
    return _environment().get_template("info_report.txt.j2").render(**ctx).strip() + "\n"
