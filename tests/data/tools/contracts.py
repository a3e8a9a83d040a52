#!/usr/bin/env python3
"""Checks the JSON shapes that the issues fix, so that scripts and other systems can rely on them.

    python3 tests/data/tools/contracts.py normalize OUTPUT.json   # what `jiaoying normalize` printed
    python3 tests/data/tools/contracts.py report REPORT.json      # a drill's or an event's report.json

Exit 0 when the shape holds; otherwise each problem on its own line and exit 1. It checks shape and types only,
not whether the values are right: that is what the tests are for.
"""
from __future__ import annotations

import json
import re
import sys
from datetime import datetime

ISO = 'iso'      # ISO 8601 with a UTC offset, or null
LEVELS = {'blue', 'yellow', 'orange', 'red'}
CODE12 = re.compile(r'^\d{12}$')

WARNING = {
    'identifier': str, 'sender': str, 'msg_type': {'alert', 'update', 'cancel'},
    'status': {'actual', 'exercise', 'test', 'system', 'draft'}, 'hazard': (str, type(None)), 'event': (str, type(None)),
    'level': LEVELS | {None}, 'sent': ISO, 'effective': ISO, 'onset': ISO, 'expires': ISO,
    'references': list, 'languages': list, 'headline': (str, type(None)), 'area': (dict, type(None)),
    'geocodes': list, 'affected': dict,
}
REPORT = {
    'warnings': ['id', 'identifier', 'sender', 'hazard', 'event', 'level', 'received_at', 'status', 'versions'],
    'consultations': ['id', 'warning_id', 'opened_at', 'deadline', 'decided_at', 'decision_level', 'judgements', 'missing'],
    'runs': ['id', 'warning_id', 'level', 'trigger', 'started_at', 'closed_at'],
    'callouts': ['id', 'run_id', 'person', 'phone', 'role', 'tier', 'areas', 'called_at', 'deadline', 'answered_at',
                 'answer_channel', 'late', 'attempts', 'escalated_to', 'state'],
    'measures': ['id', 'run_id', 'kind', 'areas', 'ordered_at', 'deadline', 'carried_out_at', 'lifted_at', 'overdue'],
    'reports': ['id', 'run_id', 'kind', 'due_at', 'sent_at', 'overdue'],
}
KPIS = ['warning_to_first_call_s', 'callouts', 'answered', 'answered_in_time', 'answer_rate_in_time', 'median_answer_s',
        'p90_answer_s', 'escalations', 'unanswered_after_escalation', 'measures_overdue', 'reports_overdue']
TIME_KEYS = {'received_at', 'opened_at', 'deadline', 'decided_at', 'started_at', 'closed_at', 'called_at', 'answered_at',
             'ordered_at', 'carried_out_at', 'lifted_at', 'due_at', 'sent_at', 'at'}


def is_iso(v) -> bool:
    if v is None:
        return True
    if not isinstance(v, str):
        return False
    try:
        return datetime.fromisoformat(v.replace('Z', '+00:00')).utcoffset() is not None
    except ValueError:
        return False


def check_normalize(doc) -> list[str]:
    out = []
    if not isinstance(doc, dict) or not isinstance(doc.get('warnings'), list) or not isinstance(doc.get('skipped'), list):
        return ['top level must be {"warnings": [...], "skipped": [...]}']
    for i, s in enumerate(doc['skipped']):
        if not isinstance(s, dict) or not isinstance(s.get('reason'), str):
            out.append(f'skipped[{i}] needs a "reason" string')
    for i, w in enumerate(doc['warnings']):
        for k, t in WARNING.items():
            if k not in w:
                out.append(f'warnings[{i}] lacks "{k}"')
                continue
            v = w[k]
            if t == ISO:
                ok = is_iso(v)
            elif isinstance(t, set):
                ok = v in t
            else:
                ok = isinstance(v, t)
            if not ok:
                out.append(f'warnings[{i}].{k} = {v!r:.60} is not of the fixed shape')
        for j, r in enumerate(w.get('references') or []):
            if not isinstance(r, dict) or not {'sender', 'identifier', 'sent'} <= set(r):
                out.append(f'warnings[{i}].references[{j}] needs sender, identifier, sent')
        for j, g in enumerate(w.get('geocodes') or []):
            if not isinstance(g, dict) or not {'name', 'value'} <= set(g):
                out.append(f'warnings[{i}].geocodes[{j}] needs name, value')
        if w.get('hazard') is None and w.get('msg_type') != 'cancel':
            out.append(f'warnings[{i}].hazard may be null only for a cancel that carries no <info>')
        aff = w.get('affected') or {}
        for k in ('villages', 'townships', 'sites'):
            if not isinstance(aff.get(k), list):
                out.append(f'warnings[{i}].affected.{k} must be a list')
        for k in ('villages', 'townships'):
            bad = [c for c in aff.get(k) or [] if not (isinstance(c, str) and CODE12.match(c))]
            if bad:
                out.append(f'warnings[{i}].affected.{k} holds codes that are not 12 digits: {bad[:3]}')
        if w.get('area') is not None and 'type' not in w['area']:
            out.append(f'warnings[{i}].area is not a GeoJSON geometry')
    return out


def check_report(doc) -> list[str]:
    out = []
    if not isinstance(doc, dict):
        return ['top level must be an object']
    for table, keys in REPORT.items():
        rows = doc.get(table)
        if not isinstance(rows, list):
            out.append(f'"{table}" must be a list')
            continue
        for i, row in enumerate(rows):
            for k in keys:
                if k not in row:
                    out.append(f'{table}[{i}] lacks "{k}"')
                elif k in TIME_KEYS and not is_iso(row[k]):
                    out.append(f'{table}[{i}].{k} = {row[k]!r:.40} is not ISO 8601 with an offset')
            for j, jd in enumerate(row.get('judgements') or []):
                for k in ('department', 'at', 'level'):
                    if k not in jd:
                        out.append(f'{table}[{i}].judgements[{j}] lacks "{k}"')
    k = doc.get('kpis')
    if not isinstance(k, dict):
        out.append('"kpis" must be an object')
    else:
        out += [f'kpis lacks "{key}"' for key in KPIS if key not in k]
    ids = {c.get('id') for c in doc.get('callouts') or [] if isinstance(c, dict)}
    for c in doc.get('callouts') or []:
        for e in c.get('escalated_to') or []:
            if e not in ids:
                out.append(f'callout {c.get("id")} escalates to {e}, which is not among the callouts')
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ('normalize', 'report'):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        with open(argv[2], encoding='utf-8') as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f'{argv[1]}: {argv[2]} is not a readable JSON file: {e}')
        return 1
    problems = (check_normalize if argv[1] == 'normalize' else check_report)(doc)
    for p in problems:
        print(p)
    print(f'{argv[1]}: {"shape holds" if not problems else f"{len(problems)} problem(s)"}')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
