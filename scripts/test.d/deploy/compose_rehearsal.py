"""The Compose stack of deploy/compose.yaml rehearsed without Docker (none on CI machines
here), with the real binary and real Postgres and Redis:

    python compose_rehearsal.py BINARY WORKDIR

What Compose would do, read from compose.yaml itself rather than restated here: each
service's `environment` (with the image's ENV from the Dockerfile underneath) interpolated
from deploy/.env.example the way Compose does (`${VAR:-default}`, `${VAR:?error}`, `$$`);
its `command`; its volumes as folders (one per named volume, so the API and the worker
share nothing on disk but what Compose shares); `depends_on` order (migrate must exit 0
before the API and the worker start); the API's own `healthcheck` command. Only the
addresses move: the service names `postgres`, `redis` and `otel-collector` become loopback
ports (a Postgres role and database made with the stack's password, a Redis started with the
stack's `--requirepass`, a local OTLP sink), and published ports become free ones.

Then the stack is used: a user made with `dev user create` reads `/users/me` through the API,
a job enqueued through the API is run by the separate worker, `/ready` sees Redis, spans reach
the collector's address, and SIGTERM stops the API and the worker with exit 0 within their
`stop_grace_period`. Exits non-zero on the first failure.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from drill import ROOT, call, expect, free_port

VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution (the subset compose.yaml uses)."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        have = env.get(name)
        if op in (":-", "-"):
            return have if have or (op == "-" and have is not None) else arg
        if op in (":?", "?"):
            if not have:
                raise SystemExit(f"compose.yaml requires {name}: {arg}")
            return have
        return have or ""
    return VAR.sub(one, value)


def dotenv(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def image_env(dockerfile: Path) -> dict[str, str]:
    """The ENV of the Dockerfile's last stage (the runtime image)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    runtime = text.split("\nFROM ")[-1]
    env = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


class OtlpSink:
    """Stands where the OpenTelemetry collector listens: counts what is exported to it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Stack:
    def __init__(self, binary: str, work: Path) -> None:
        self.binary = binary
        self.work = work
        self.doc = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
        self.vars = {**dotenv(ROOT / "deploy/.env.example")}
        self.base_env = image_env(ROOT / "Dockerfile")
        # `service:port` inside the Compose network -> `127.0.0.1:port` here.
        self.addresses: dict[str, str] = {}
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen] = {}

    def service(self, name: str) -> dict:
        return self.doc["services"][name]

    def volumes(self, name: str) -> list[tuple[str, Path]]:
        """(container path, host folder) of each named volume the service mounts."""
        out = []
        for spec in self.service(name).get("volumes", []):
            source, target = spec.split(":")[:2]
            if source in self.doc.get("volumes", {}):
                folder = self.work / "volumes" / source
                folder.mkdir(parents=True, exist_ok=True)
                out.append((target, folder))
        return out

    def host_path(self, name: str, value: str) -> str:
        for target, folder in self.volumes(name):
            if value == target or value.startswith(target + "/"):
                return str(folder) + value[len(target):]
        return value

    def relocate(self, name: str, key: str, value: str) -> str:
        """A container address or path, as it is reachable from this machine."""
        for inside, here in self.addresses.items():
            value = re.sub(rf"(?<=[@/]){re.escape(inside)}(?=/|$)", here, value)
        if key == "LISTEN_ADDR":
            port = self.ports.setdefault(name, free_port())
            return f"127.0.0.1:{port}"
        return self.host_path(name, value)

    def env(self, name: str) -> dict[str, str]:
        declared = {**self.base_env, **{k: interpolate(str(v), self.vars)
                                        for k, v in (self.service(name).get("environment") or {}).items()}}
        env = {k: self.relocate(name, k, v) for k, v in declared.items()}
        return {"PATH": os.environ["PATH"], "HOME": str(self.work), **env}

    def cwd(self, name: str) -> Path:
        return Path(self.host_path(name, "/data"))

    def command(self, name: str) -> list[str]:
        return [self.binary, *[interpolate(a, self.vars) for a in self.service(name)["command"]]]

    def start(self, name: str) -> None:
        log = open(self.work / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(self.command(name), env=self.env(name), cwd=self.cwd(name),
                                            stdout=log, stderr=subprocess.STDOUT)

    def tail(self, name: str) -> str:
        return "".join((self.work / f"{name}.log").read_text().splitlines(keepends=True)[-30:])

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess:
        """A one-off `docker compose run NAME ARGS…`."""
        return subprocess.run([self.binary, *args], env=self.env(name), cwd=self.cwd(name),
                              capture_output=True, text=True, timeout=120)


def seconds(duration: str) -> float:
    return float(duration.rstrip("s"))


def start_backing_services(stack: Stack) -> subprocess.Popen:
    """Postgres (a role and database as the postgres service's environment makes them) and
    Redis (the redis service's own command) on loopback ports."""
    pg = stack.service("postgres")["environment"]
    user, db = pg["POSTGRES_USER"], pg["POSTGRES_DB"]
    password = interpolate(pg["POSTGRES_PASSWORD"], stack.vars)
    admin = os.environ["TEST_DATABASE_URL"]
    psql = [os.path.join(os.environ["PG_BIN"], "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", admin, "-c"]
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {db}"], check=True)
    subprocess.run([*psql, f"DROP ROLE IF EXISTS {user}"], check=True)
    subprocess.run([*psql, f"CREATE ROLE {user} LOGIN PASSWORD '{password}'"], check=True)
    subprocess.run([*psql, f"CREATE DATABASE {db} OWNER {user}"], check=True)
    stack.addresses["postgres:5432"] = urllib.parse.urlparse(admin).netloc.split("@")[-1]
    redis_port = free_port()
    redis_dir = stack.work / "volumes" / "redisdata"
    redis_dir.mkdir(parents=True, exist_ok=True)
    command = [interpolate(a, stack.vars) for a in stack.service("redis")["command"]]
    redis = subprocess.Popen([*command, "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(redis_dir)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    password = interpolate(stack.service("redis")["environment"]["REDIS_PASSWORD"], stack.vars)
    deadline = time.monotonic() + 20
    while subprocess.run(["redis-cli", "-p", str(redis_port), "-a", password, "--no-auth-warning", "ping"],
                         capture_output=True, text=True).stdout.strip() != "PONG":
        if time.monotonic() > deadline:
            raise SystemExit("Redis did not start")
        time.sleep(0.2)
    stack.addresses["redis:6379"] = f"127.0.0.1:{redis_port}"
    return redis


def wait_healthy(stack: Stack, name: str) -> None:
    """The service's own healthcheck command, retried as Compose would."""
    check = stack.service(name)["healthcheck"]
    test = check["test"]
    expect(test[0] == "CMD" and test[1] == "/usr/local/bin/user-service", f"{name}'s health check runs the binary")
    port = stack.ports[name]
    args = [stack.binary, *[a.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for a in test[2:]]]
    budget = seconds(check.get("start_period", "0s")) + seconds(check["interval"]) * check["retries"]
    deadline = time.monotonic() + budget
    while subprocess.run(args, capture_output=True, timeout=seconds(check["timeout"]) + 5).returncode != 0:
        if stack.procs[name].poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name} never became healthy:\n{stack.tail(name)}")
        time.sleep(0.5)
    expect(True, f"{name} is healthy by its own health check ({' '.join(test[2:])})")


def use_the_stack(stack: Stack) -> None:
    api = f"http://127.0.0.1:{stack.ports['api']}"
    status, _, ready = call("GET", api + "/ready")
    expect(status == 200 and ready.get("redis") == "ok", f"/ready sees Postgres and Redis: {ready}")
    made = stack.run("api", "dev", "user", "create", "--sub", "user_compose", "--email", "ada@example.com")
    expect(made.returncode == 0, f"dev user create in the api container: {made.stderr.strip()[-300:]}")
    token = stack.run("api", "dev", "token", "--sub", "user_compose").stdout.strip()
    status, _, me = call("GET", api + "/users/me", headers={"Authorization": f"Bearer {token}"})
    expect(status == 200 and me["email"] == "ada@example.com", f"GET /users/me through the API: {status}")
    admin = stack.run("api", "dev", "token", "--sub", "user_compose", "--admin").stdout.strip()
    bearer = {"Authorization": f"Bearer {admin}"}
    status, _, _ = call("POST", api + "/admin/jobs/usage_analytics/run", {}, bearer)
    expect(status == 202, f"a job enqueued through the API (--no-worker): {status}")
    deadline = time.monotonic() + 60
    while True:
        _, _, jobs = call("GET", api + "/admin/jobs", headers=bearer)
        job = next(j for j in jobs["items"] if j["name"] == "usage_analytics")
        if job["last_outcome"] == "succeeded":
            break
        if time.monotonic() > deadline or stack.procs["worker"].poll() is not None:
            raise SystemExit(f"the worker did not run the job: {job}\n{stack.tail('worker')}")
        time.sleep(0.5)
    expect(True, "the separate worker ran it")


def stop(stack: Stack, name: str) -> None:
    grace = seconds(stack.service(name)["stop_grace_period"])
    proc = stack.procs[name]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit(f"{name} ignored SIGTERM for its stop_grace_period ({grace} s)")
    expect(code == 0, f"{name} stopped on SIGTERM with exit 0 in {time.monotonic() - t0:.1f} s (grace {grace:.0f} s)")


def main() -> int:
    binary, work = sys.argv[1], Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    stack = Stack(binary, work)
    sink = OtlpSink()
    stack.addresses["otel-collector:4318"] = f"127.0.0.1:{sink.port}"
    redis = start_backing_services(stack)
    try:
        expect(stack.service("migrate")["command"] == ["migrate"], "migrate runs `user-service migrate`")
        migrate = subprocess.run(stack.command("migrate"), env=stack.env("migrate"), cwd=stack.cwd("migrate"),
                                 capture_output=True, text=True, timeout=120)
        expect(migrate.returncode == 0, f"migrate exits 0 (depends_on: service_completed_successfully) {migrate.stderr[-300:]}")
        for name in ("api", "worker"):
            stack.start(name)
        wait_healthy(stack, "api")
        use_the_stack(stack)
        deadline = time.monotonic() + 30
        while not any(p.endswith("/v1/traces") for p in sink.paths) and time.monotonic() < deadline:
            time.sleep(0.5)
        expect(any(p.endswith("/v1/traces") for p in sink.paths), f"spans reach otel-collector:4318 ({len(sink.paths)} exports)")
        for name in ("api", "worker"):
            stop(stack, name)
    finally:
        for proc in stack.procs.values():
            if proc.poll() is None:
                proc.kill()
        redis.terminate()
        redis.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
