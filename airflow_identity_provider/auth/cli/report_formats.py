"""The access report (``auth.rules.access_report.build_report``) as JSON, CSV or one self-contained HTML page.

Pure functions of the report dict. Names in it come from settings and from DAG files (access_control keys,
tags, DAG ids are written by DAG authors), so the HTML escapes every value and the CSV defuses cells a
spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from airflow_identity_provider.auth.rules.access_report import Holdings, grouped_lines, report_rows

CSV_HEADER = ("provider", "principal_kind", "principal", "dag_id", "permission", "source")
FORMATS = ("json", "csv", "html")
# OWASP "CSV injection": a cell starting with one of these is a formula in Excel, LibreOffice, Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def render(report: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def render_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(tuple(_cell(value) for value in row) for row in report_rows(report))
    return out.getvalue()


# --- HTML ------------------------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Airflow access report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:80rem;margin:2rem auto;padding:0 1rem;color:#222}}
h1{{font-size:1.5rem}} h2{{font-size:1.25rem;margin-top:2.5rem}} h3{{font-size:1.05rem;margin-top:1.5rem}}
table{{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}} th,td{{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top;font-size:.9rem}} th{{background:#f3f3f3}} code{{font-size:.85rem}}
.detail{{color:#555}} .warning{{color:#a40}}</style></head>
<body><h1>Airflow access report</h1>{body}</body></html>
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, code_columns: Sequence[int] = ()) -> str:
    def cell(index: int, value: str) -> str:
        text = escape(value)
        return f"<td><code>{text}</code></td>" if index in code_columns else f"<td>{text}</td>"

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>" if body else '<p class="detail">(none)</p>'


def _holdings(entries: Iterable[Mapping[str, Any]]) -> Holdings:
    holdings: Holdings = {}
    for entry in entries:
        key, _, method = str(entry["permission"]).rpartition(":")
        holdings[(key, method)] = [str(source) for source in entry["sources"]]
    return holdings


def _joined(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values) or "-"


def render_html(report: Mapping[str, Any]) -> str:
    dags: Mapping[str, Mapping[str, Any]] = report["dags"]
    parts = [
        f'<p class="detail">Generated {escape(str(report.get("generated_at") or "-"))}; '
        f"{len(dags)} DAGs in the DAG index; report version {escape(str(report['report_version']))}.</p>"
    ]
    parts += [f'<p class="warning">{escape(str(w))}</p>' for w in report.get("warnings", [])]
    for provider in report["providers"]:
        parts.append(_provider_html(provider))
    parts.append("<h2>DAGs</h2>")
    parts.append(
        _table(
            ("DAG", "Bundle", "Tags", "access_control entries", "Refused entries (grant nothing)"),
            (
                (
                    dag_id,
                    facts["bundle"] or "-",
                    _joined(facts["tags"]),
                    _joined(facts["access_control"]),
                    "; ".join(facts["problems"]) or "-",
                )
                for dag_id, facts in dags.items()
            ),
            code_columns=(0,),
        )
    )
    return _PAGE.format(body="".join(parts))


def _provider_html(provider: Mapping[str, Any]) -> str:
    parts = [
        f"<h2>Provider {escape(str(provider['name']))} ({escape(str(provider['display_name']))})</h2>",
        f'<p class="detail">default role: {escape(_joined(provider["default_roles"]))}; DAG access_control '
        f"honoured: {'yes' if provider['honour_dag_access_control'] else 'no'}.</p>",
    ]
    principals = provider["principals"]
    parts.append(
        _table(
            ("Kind", "Principal", "Named by", "Roles", "Teams", "DAGs with grants or access_control"),
            (
                (
                    p["kind"],
                    p["name"],
                    _joined(p.get("named_by", [])),
                    _joined(p["roles"]),
                    _joined(p["teams"]),
                    str(len(p["dags"])),
                )
                for p in principals
            ),
            code_columns=(1,),
        )
    )
    for principal in principals:
        parts.append(f"<h3>{escape(str(principal['kind']))} <code>{escape(str(principal['name']))}</code></h3>")
        rows = [
            ("every DAG / global", text, "; ".join(why)) for text, why in grouped_lines(_holdings(principal["global"]))
        ]
        for dag_id, entries in principal["dags"].items():
            rows += [(dag_id, text, "; ".join(why)) for text, why in grouped_lines(_holdings(entries))]
        parts.append(_table(("Where", "Permissions", "Why"), rows, code_columns=(1,)))
    return "".join(parts)


__all__ = ["CSV_HEADER", "FORMATS", "render", "render_csv", "render_html", "render_json"]
