"""Runs the load test against the release binary, once per database engine, and reports.

For each engine: starts user-service (SQLite file, or a fresh Postgres database on
TEST_DATABASE_URL) with its google provider pointed at slow_provider.py, makes the fixtures
(users created by signed Clerk webhooks, session tokens from `user-service dev token`, each
user's Google account connected through the real authorize → callback flow, service keys
from `user-service service-key create`), runs Locust headless at a fixed arrival rate while
sampling the service's RSS (/proc/PID/status) and database connections (the pool gauges of
/metrics and, on Postgres, pg_stat_activity) every second, then stops the service.

Writes OUT/<engine>/locust.html (Locust's report: latency and throughput charts),
OUT/<engine>/locust_*.csv, OUT/<engine>/samples.csv, OUT/<engine>/summary.json and
OUT/index.html (per-route percentiles, errors, RSS and connections over time as inline SVG).
Exits 1 on any failed request (any 5xx, any status the mix does not expect), on a service
that died, and in soak mode on RSS that grows.

    python run.py --bin target/release/user-service --out target/load-report \
        --engines sqlite,postgres --duration 120 [--soak]
"""

import argparse
import base64
import concurrent.futures
import csv
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import requests

import report
from svix_sign import svix_headers

HERE = Path(__file__).resolve().parent
USERS = 50
CLIENT_ID = "load-google"
# Google-like refresh latency: slow enough that refreshes overlap other traffic.
PROVIDER_DELAY_MS = 400


def log(*a):
    print(f"[load {time.strftime('%H:%M:%S')}]", *a, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before answering {url}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not answer {url} within {timeout} s")


def psql(url, sql):
    psql_bin = os.path.join(os.environ.get("PG_BIN", ""), "psql") if os.environ.get("PG_BIN") else "psql"
    out = subprocess.run([psql_bin, url, "-tAc", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def with_database(url, name):
    u = urlparse(url)
    return u._replace(path=f"/{name}").geturl()


class Service:
    """One user-service process and the environment its CLI commands share."""

    def __init__(self, binary, engine, work, provider_url, client_secret):
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        work.mkdir(parents=True, exist_ok=True)
        self.database = None
        if engine == "sqlite":
            db = f"sqlite://{work}/user-service.db"
        else:
            base = os.environ.get("TEST_DATABASE_URL")
            if not base:
                raise SystemExit("the postgres engine needs TEST_DATABASE_URL (run through scripts/test or scripts/load)")
            self.database = f"load_{int(time.time())}_{secrets.token_hex(3)}"
            psql(base, f"CREATE DATABASE {self.database}")
            db = with_database(base, self.database)
        self.db_url = db
        callback = "http://127.0.0.1:9/integrations/google/callback"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "OAUTH_", "DATABASE_"))},
            "ENVIRONMENT": "development",
            "LISTEN_ADDR": f"127.0.0.1:{self.port}",
            "DATABASE_URL": db,
            "DATA_DIR": str(work / "data"),
            "CLERK_WEBHOOK_SECRET": self.webhook_secret,
            "OAUTH_REDIRECT_URI": callback,
            "OAUTH_ALLOWED_REDIRECT_URIS": callback,
            "OAUTH_GOOGLE_CLIENT_ID": CLIENT_ID,
            "OAUTH_GOOGLE_CLIENT_SECRET": client_secret,
            "OAUTH_GOOGLE_AUTHORIZE_URL": f"{provider_url}/authorize",
            "OAUTH_GOOGLE_TOKEN_URL": f"{provider_url}/token",
            "OAUTH_GOOGLE_REVOKE_URL": f"{provider_url}/revoke",
            "OAUTH_GOOGLE_USERINFO_URL": f"{provider_url}/userinfo",
            # Clerk's webhooks arrive from a handful of addresses: the anonymous per-IP limit
            # (60/min by default) would turn them into 429s here, where every request comes
            # from 127.0.0.1. Users and services keep their default limits.
            "RATE_LIMIT_ANONYMOUS_PER_MINUTE": "1000000",
            "RUST_LOG": os.environ.get("RUST_LOG", "info"),
        }
        self.log_file = open(work / "user-service.log", "wb")
        self.proc = subprocess.Popen([binary, "serve"], env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/health", self.proc, "user-service")

    def cli(self, *args, line_prefix=""):
        """Runs a CLI command with the service's configuration; its last output line that
        starts with `line_prefix` (the CLI's own log lines share stdout with its answer)."""
        out = subprocess.run([self.binary, *args], env=self.env, check=True, capture_output=True, text=True)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith(line_prefix)]
        if not lines:
            raise SystemExit(f"user-service {' '.join(args[:2])} printed no line starting with {line_prefix!r}")
        return lines[-1].strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        if self.database:
            psql(os.environ["TEST_DATABASE_URL"], f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


def clerk_webhook(service, event):
    body = json.dumps(event)
    res = requests.post(f"{service.url}/webhooks/clerk", data=body, headers=svix_headers(service.webhook_secret, body))
    if res.status_code != 200:
        raise SystemExit(f"webhook answered {res.status_code}: {res.text}")


def make_user(service, i):
    sub = f"user_load{i:03d}"
    email = f"{sub}@example.com"
    now = int(time.time() * 1000)
    clerk_webhook(
        service,
        {
            "type": "user.created",
            "object": "event",
            "data": {
                "id": sub,
                "object": "user",
                "email_addresses": [{"id": "idn_1", "email_address": email}],
                "primary_email_address_id": "idn_1",
                "first_name": "Load",
                "last_name": str(i),
                "image_url": None,
                "created_at": now,
                "updated_at": now,
            },
        },
    )
    token = service.cli("dev", "token", "--sub", sub, "--ttl-seconds", str(6 * 3600), line_prefix="ey")
    auth = {"Authorization": f"Bearer {token}"}
    res = requests.post(f"{service.url}/users/me/integrations/google/authorize", json={}, headers=auth)
    res.raise_for_status()
    consent = requests.get(res.json()["authorization_url"], allow_redirects=False)
    if consent.status_code != 302:
        raise SystemExit(f"the provider's authorize answered {consent.status_code}: {consent.text}")
    q = parse_qs(urlparse(consent.headers["location"]).query)
    done = requests.post(
        f"{service.url}/users/me/integrations/google",
        json={"code": q["code"][0], "state": q["state"][0]},
        headers=auth,
    )
    if done.status_code != 200 or done.json()["status"] != "active":
        raise SystemExit(f"connecting google answered {done.status_code}: {done.text}")
    return {"sub": sub, "email": email, "token": token}


def make_fixtures(service, path):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        users = list(pool.map(lambda i: make_user(service, i), range(USERS)))
    keys = [
        service.cli("service-key", "create", "--name", name, "--permissions", "tokens:read", line_prefix="usk_")
        for name in ("calendar-sync", "mail-digest", "ai-assistant")
    ]
    refresh = service.cli(
        "service-key", "create", "--name", "token-refresher", "--permissions", "tokens:refresh", line_prefix="usk_"
    )
    fixtures = {
        "users": users,
        "service_keys": {"tokens_read": keys, "tokens_refresh": refresh},
        "webhook_secret": service.webhook_secret,
    }
    path.write_text(json.dumps(fixtures))


class Sampler(threading.Thread):
    """Every second: RSS of the service, its pool gauges, and Postgres' own connection count."""

    def __init__(self, service, path):
        super().__init__(daemon=True)
        self.service = service
        self.path = path
        self.stop_event = threading.Event()
        self.rows = []

    def rss_kib(self):
        with open(f"/proc/{self.service.proc.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def pool(self):
        in_use = idle = 0.0
        text = requests.get(f"{self.service.url}/metrics", timeout=2).text
        for line in text.splitlines():
            if line.startswith("user_service_db_pool_connections_in_use"):
                in_use += float(line.rsplit(" ", 1)[1])
            elif line.startswith("user_service_db_pool_connections_idle"):
                idle += float(line.rsplit(" ", 1)[1])
        return in_use, idle

    def run(self):
        start = time.time()
        while not self.stop_event.is_set():
            try:
                in_use, idle = self.pool()
                pg = ""
                if self.service.database:
                    pg = psql(
                        os.environ["TEST_DATABASE_URL"],
                        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{self.service.database}'",
                    )
                self.rows.append(
                    {"t": round(time.time() - start, 1), "rss_kib": self.rss_kib(), "pool_in_use": in_use,
                     "pool_idle": idle, "pg_connections": pg}
                )
            except (OSError, requests.RequestException, subprocess.CalledProcessError) as e:
                log("sample failed:", e)
            self.stop_event.wait(1)
        with open(self.path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["t", "rss_kib", "pool_in_use", "pool_idle", "pg_connections"])
            w.writeheader()
            w.writerows(self.rows)


def run_engine(args, engine, provider_url, client_secret):
    out = Path(args.out) / engine
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) / engine
    log(f"{engine}: starting user-service")
    service = Service(args.bin, engine, work, provider_url, client_secret)
    try:
        log(f"{engine}: fixtures ({USERS} users with Google connected, 4 service keys)")
        fixtures = work / "fixtures.json"
        make_fixtures(service, fixtures)
        sampler = Sampler(service, out / "samples.csv")
        sampler.start()
        log(f"{engine}: locust for {args.duration} s")
        started = time.time()
        locust = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
             "--host", service.url, "--users", "51", "--spawn-rate", "51", "--run-time", f"{args.duration}s",
             "--stop-timeout", "10", "--html", str(out / "locust.html"), "--csv", str(out / "locust"),
             "--csv-full-history", "--only-summary", "--loglevel", "WARNING"],
            env={**os.environ, "LOAD_FIXTURES": str(fixtures)},
            check=False,
        )
        elapsed = time.time() - started
        sampler.stop_event.set()
        sampler.join()
        alive = service.proc.poll() is None
    finally:
        service.stop()
    summary = report.summarize(engine, out, elapsed, soak=args.soak)
    summary["locust_exit"] = locust.returncode
    summary["service_alive"] = alive
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--engines", default="sqlite,postgres")
    p.add_argument("--duration", type=int, default=120, help="seconds of load per engine")
    p.add_argument("--soak", action="store_true", help="also fail when RSS grows")
    args = p.parse_args()

    client_secret = secrets.token_urlsafe(24)
    provider_port = free_port()
    provider_url = f"http://127.0.0.1:{provider_port}"
    provider = subprocess.Popen(
        [sys.executable, str(HERE / "slow_provider.py"), str(provider_port), CLIENT_ID, client_secret,
         str(PROVIDER_DELAY_MS)]
    )
    try:
        wait_http(f"{provider_url}/stats", provider, "slow provider")
        summaries = [run_engine(args, e, provider_url, client_secret) for e in args.engines.split(",")]
    finally:
        provider.terminate()
        provider.wait()
    report.write_index(Path(args.out), summaries)
    print(report.text_table(summaries), flush=True)
    problems = [m for s in summaries for m in s["problems"]]
    problems += [f"{s['engine']}: locust exited {s['locust_exit']}" for s in summaries if s["locust_exit"]]
    problems += [f"{s['engine']}: the service died under load" for s in summaries if not s["service_alive"]]
    if problems:
        print("\nLOAD TEST FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    log(f"report: {Path(args.out) / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
