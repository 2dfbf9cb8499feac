#!/usr/bin/env python3
"""Shares of a profile by component, for scripts/bench's BENCH_PROFILE.

Reads `perf script -F comm,ip,sym` on stdin. Each sample goes to the innermost frame that
belongs to a known component (so `malloc` called from serde_json counts as serde_json, and
a syscall as whatever made it); samples of SQLite's connection threads are split into
SQLite's own work and the waiting and waking around it. With the CPU time per request
(`components.py 131.2`), each share is also given in microseconds per request.
"""

import collections
import re
import sys

# Innermost match wins, so the order matters only for a frame two patterns match.
COMPONENTS = [
    ("tracing and OpenTelemetry", r"tracing_subscriber|tracing_opentelemetry|tracing_core|opentelemetry|tracing::span|tracing_appender|server::telemetry"),
    ("serde_json", r"serde_json|serde::|serde_core::"),
    ("metrics", r"^metrics::|metrics_exporter|metrics_util|server::metrics|app::metrics|store::metrics"),
    ("the access log and audit chain (app, store)", r"app::audit|store::audit|sha2"),
    ("HKDF and AES-GCM", r"aes|hkdf|ring::|aws_lc|vault::"),
    ("sea-orm and sea-query", r"sea_orm|sea_query"),
    ("sqlx on the tokio side", r"sqlx_core|sqlx_sqlite|sqlx_postgres|flume"),
    ("request context, authentication, rate limit", r"server::auth|app::service_keys|rate_limit|server::http::context"),
    ("the rest of app, store and domain", r"^app::|^store::|^domain::"),
    ("the rest of server", r"^server::"),
    ("hyper", r"hyper::"),
    ("axum and tower", r"axum|tower"),
    ("tokio", r"tokio::"),
]
PATTERNS = [(name, re.compile(p)) for name, p in COMPONENTS]
SQLITE_WORK = re.compile(r"^sqlite3|btree|pager", re.I)


def component(thread, frames):
    if thread.startswith("sqlx-sqlite"):
        if any(SQLITE_WORK.search(f) for f in frames):
            return "SQLite's own work (its connection threads)"
        return "SQLite's threads waiting and waking"
    if thread.startswith("tracing-append"):
        return "the log writer thread"
    for frame in frames:
        for name, pattern in PATTERNS:
            if pattern.search(frame):
                return name
    return "other"


def samples(lines):
    thread, frames = None, []
    for line in lines:
        if not line.strip():
            if thread and frames:
                yield thread, frames
            thread, frames = None, []
        elif not line.startswith((" ", "\t")):
            thread, frames = line.split()[0], []
        else:
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                frames.append(re.sub(r"\+0x[0-9a-f]+$", "", re.sub(r"\s+\(\S+\)$", "", parts[1])))
    if thread and frames:
        yield thread, frames


def main():
    cpu = float(sys.argv[1]) if len(sys.argv) > 1 else None
    counts = collections.Counter(component(t, f) for t, f in samples(sys.stdin))
    total = sum(counts.values()) or 1
    for name, n in counts.most_common():
        per_request = f"  {cpu * n / total:5.1f} us/request" if cpu else ""
        print(f"{100 * n / total:6.2f} %  {name}{per_request}")
    print(f"{total} samples")


if __name__ == "__main__":
    main()
