"""Figures and the HTML report of a load run: per-route percentiles and errors from Locust's
CSV files, RSS and database connections from the sampler, plots as inline SVG (no plotting
library needed)."""

import csv
import html
import json
from pathlib import Path

# In soak mode, RSS at the end may exceed RSS after the warm-up by at most this factor.
SOAK_RSS_GROWTH = 1.25


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _rows(path):
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def summarize(engine, out, elapsed, soak):
    routes = []
    total = None
    for r in _rows(out / "locust_stats.csv"):
        row = {
            "name": r["Name"] if r["Type"] in ("", "None") or r["Name"] == "Aggregated" else r["Name"],
            "requests": int(r["Request Count"]),
            "failures": int(r["Failure Count"]),
            "rps": round(_num(r["Requests/s"]) or 0, 1),
            "p50": _num(r["50%"]),
            "p95": _num(r["95%"]),
            "p99": _num(r["99%"]),
            "max": _num(r["Max Response Time"]),
        }
        if r["Name"] == "Aggregated":
            total = row
        else:
            routes.append(row)
    failures = [
        {"route": r["Name"], "error": r["Error"], "count": int(r["Occurrences"])}
        for r in _rows(out / "locust_failures.csv")
    ]
    samples = _rows(out / "samples.csv")
    rss = [int(s["rss_kib"]) / 1024 for s in samples]
    pool = [(_num(s["pool_in_use"]) or 0) + (_num(s["pool_idle"]) or 0) for s in samples]
    pg = [int(s["pg_connections"]) for s in samples if s["pg_connections"]]
    problems = []
    if total is None or total["requests"] == 0:
        problems.append(f"{engine}: no request was made")
    if failures:
        n = sum(f["count"] for f in failures)
        problems.append(f"{engine}: {n} failed request(s): " + "; ".join(
            f"{f['count']}x {f['route']}: {f['error'][:120]}" for f in failures[:5]))
    rss_growth = None
    if len(rss) >= 10:
        warm = rss[len(rss) // 5: len(rss) // 5 + max(1, len(rss) // 10)]
        end = rss[-max(1, len(rss) // 10):]
        rss_growth = (sum(end) / len(end)) / (sum(warm) / len(warm))
        if soak and rss_growth > SOAK_RSS_GROWTH:
            problems.append(f"{engine}: RSS grew {rss_growth:.2f}x after the warm-up (limit {SOAK_RSS_GROWTH}x)")
    return {
        "engine": engine,
        "seconds": round(elapsed),
        "routes": routes,
        "total": total,
        "failures": failures,
        "rss_mib": {"start": round(rss[0], 1) if rss else None, "end": round(rss[-1], 1) if rss else None,
                    "max": round(max(rss), 1) if rss else None,
                    "growth_after_warmup": round(rss_growth, 3) if rss_growth else None},
        "pool_connections_max": max(pool) if pool else None,
        "pool_in_use_max": max((_num(s["pool_in_use"]) or 0) for s in samples) if samples else None,
        "pg_connections_max": max(pg) if pg else None,
        "problems": problems,
    }


def _fmt(v):
    return "–" if v is None else (f"{v:.0f}" if v >= 10 else f"{v:.1f}")


def text_table(summaries):
    lines = []
    for s in summaries:
        lines.append(f"\n{s['engine']}: {s['seconds']} s, RSS {s['rss_mib']['start']} → {s['rss_mib']['end']} MiB "
                     f"(max {s['rss_mib']['max']}), pool connections max {s['pool_connections_max']}, "
                     f"Postgres connections max {s['pg_connections_max'] if s['pg_connections_max'] is not None else '–'}")
        lines.append(f"  {'route':<48} {'reqs':>7} {'fail':>5} {'rps':>6} {'p50':>6} {'p95':>6} {'p99':>6}  (ms)")
        for r in s["routes"] + ([s["total"]] if s["total"] else []):
            lines.append(f"  {r['name'][:48]:<48} {r['requests']:>7} {r['failures']:>5} {r['rps']:>6} "
                         f"{_fmt(r['p50']):>6} {_fmt(r['p95']):>6} {_fmt(r['p99']):>6}")
    return "\n".join(lines)


def _svg(title, series, unit, width=640, height=200):
    """A line chart: series is [(label, colour, [(x, y), ...])]."""
    pts = [p for _, _, ps in series for p in ps if p[1] is not None]
    if not pts:
        return f"<p>{html.escape(title)}: no samples</p>"
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts) or 1
    y1 = max(p[1] for p in pts) * 1.1 or 1
    left, bottom = 50, 24

    def sx(x):
        return left + (x - x0) / ((x1 - x0) or 1) * (width - left - 10)

    def sy(y):
        return (height - bottom) - y / y1 * (height - bottom - 24)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}" font-size="11">',
             f'<text x="{left}" y="12" font-weight="bold">{html.escape(title)}</text>']
    for i in range(5):
        y = y1 * i / 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.0f}</text>')
    parts.append(f'<text x="{width - 10}" y="{height}" text-anchor="end">seconds ({unit})</text>')
    for n, (label, colour, ps) in enumerate(series):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ps if y is not None)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        parts.append(f'<text x="{left + 10 + n * 150}" y="{height + 14}" fill="{colour}">■ {html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _engine_section(out, s):
    samples = _rows(out / s["engine"] / "samples.csv")
    t = [_num(r["t"]) for r in samples]
    history = [r for r in _rows(out / s["engine"] / "locust_stats_history.csv") if r["Name"] == "Aggregated"]
    h0 = int(history[0]["Timestamp"]) if history else 0
    ht = [int(r["Timestamp"]) - h0 for r in history]
    charts = [
        _svg("Throughput", [("requests/s", "#2f6fed", list(zip(ht, [_num(r["Requests/s"]) for r in history]))),
                            ("failures/s", "#b3261e", list(zip(ht, [_num(r["Failures/s"]) for r in history])))],
             "req/s"),
        _svg("Latency (all routes, rolling)", [("p50", "#2f6fed", list(zip(ht, [_num(r["50%"]) for r in history]))),
                                               ("p95", "#e8a33d", list(zip(ht, [_num(r["95%"]) for r in history]))),
                                               ("p99", "#b3261e", list(zip(ht, [_num(r["99%"]) for r in history])))],
             "ms"),
        _svg("Service RSS", [("RSS MiB", "#2f6fed", list(zip(t, [int(r["rss_kib"]) / 1024 for r in samples])))],
             "MiB"),
        _svg("Database connections",
             [("pool in use", "#b3261e", list(zip(t, [_num(r["pool_in_use"]) for r in samples]))),
              ("pool idle", "#2f6fed", list(zip(t, [_num(r["pool_idle"]) for r in samples]))),
              ("pg_stat_activity", "#3a9d5d", list(zip(t, [_num(r["pg_connections"]) for r in samples])))],
             "connections"),
    ]
    rows = "".join(
        f"<tr><td>{html.escape(r['name'])}</td><td>{r['requests']}</td><td>{r['failures']}</td><td>{r['rps']}</td>"
        f"<td>{_fmt(r['p50'])}</td><td>{_fmt(r['p95'])}</td><td>{_fmt(r['p99'])}</td><td>{_fmt(r['max'])}</td></tr>"
        for r in s["routes"] + ([s["total"]] if s["total"] else [])
    )
    errors = "".join(f"<li>{f['count']}× {html.escape(f['route'])}: {html.escape(f['error'])}</li>"
                     for f in s["failures"]) or "<li>none</li>"
    return (f"<h2>{s['engine']}</h2><p>{s['seconds']} s of load; RSS {s['rss_mib']['start']} → {s['rss_mib']['end']}"
            f" MiB (max {s['rss_mib']['max']}); pool connections max {s['pool_connections_max']}; Postgres "
            f"connections max {s['pg_connections_max'] if s['pg_connections_max'] is not None else '–'}. "
            f"<a href='{s['engine']}/locust.html'>Locust's report</a></p>"
            "<table><tr><th>route</th><th>requests</th><th>failures</th><th>req/s</th><th>p50 ms</th>"
            f"<th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>{rows}</table>"
            f"<h3>Errors</h3><ul>{errors}</ul>" + "".join(f"<div>{c}</div>" for c in charts))


def write_index(out, summaries):
    body = "".join(_engine_section(out, s) for s in summaries)
    page = ("<!doctype html><meta charset='utf-8'><title>user-service load test</title>"
            "<style>body{font:14px system-ui;margin:24px;max-width:900px}table{border-collapse:collapse}"
            "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child"
            "{text-align:left}</style><h1>user-service load test</h1>" + body +
            f"<h2>Raw</h2><pre>{html.escape(json.dumps(summaries, indent=2))}</pre>")
    (Path(out) / "index.html").write_text(page, encoding="utf-8")
