"""``/docs``: the API reference as one self-contained HTML page (no CDN, no JavaScript).

FastAPI's Swagger UI loads its script and style from a CDN, which an offline tool must not
need; this page is rendered from the same OpenAPI schema (``/openapi.json``) instead.
"""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
          "code{background:#f3f3f3;padding:0 .2rem}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}pre{white-space:pre-wrap}")


def _params(op: dict[str, Any]) -> str:
    rows = []
    for p in op.get("parameters", []):
        schema = p.get("schema", {})
        kind = schema.get("type") or "/".join(s.get("type", "") for s in schema.get("anyOf", []))
        default = schema.get("default")
        rows.append(f"<tr><td><code>{escape(str(p.get('name')))}</code></td><td>{escape(str(p.get('in')))}</td>"
                    f"<td>{escape(str(kind))}</td><td>{'' if default is None else escape(repr(default))}</td>"
                    f"<td>{escape(str(p.get('description', '')))}</td></tr>")
    if "requestBody" in op:
        rows.append("<tr><td><code>file</code></td><td>multipart form</td><td>binary</td><td></td>"
                    "<td>the audio file (required)</td></tr>")
    if not rows:
        return ""
    return ("<table><tr><th>name</th><th>in</th><th>type</th><th>default</th><th>description</th></tr>"
            + "".join(rows) + "</table>")


def docs_page(schema: dict[str, Any]) -> str:
    """The HTML reference for an OpenAPI ``schema``."""
    info = schema.get("info", {})
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(info.get('title', 'API'))} API"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>{escape(info.get('title', 'API'))} {escape(str(info.get('version', '')))}</h1>",
             f"<p>{escape(info.get('summary', ''))} Machine-readable schema: <a href='/openapi.json'>/openapi.json</a>."
             "</p>"]
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            parts.append(f"<h2><code>{escape(method.upper())} {escape(path)}</code></h2>"
                         f"<p>{escape(op.get('summary', ''))}</p>{_params(op)}")
    parts.append(f"<h2>Errors and limits</h2><pre>{escape(info.get('description', ''))}</pre></body></html>")
    return "".join(parts)
