"""Shared pieces of the drills that run the real binary (restore drill, walkthrough):
starting and stopping the service, HTTP calls, Clerk webhooks, the local test provider.
Standard library only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(method: str, url: str, body=None, headers=None, content_type="application/json"):
    """One HTTP request; returns (status, headers, parsed JSON or text). Never raises on a status."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("Content-Type", content_type)
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(req, timeout=30) as res:
            status, hdrs, raw = res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    text = raw.decode(errors="replace")
    try:
        return status, hdrs, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, hdrs, text


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)
    print(f"ok   {what}")


class Provider:
    """scripts/dev/fake-oauth-provider on a free port."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts/dev/fake-oauth-provider"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the test provider did not start: {line!r}")
        self.url = line.removeprefix("listening on ")

    def env(self, provider: str = "GOOGLE") -> dict[str, str]:
        p = f"OAUTH_{provider}_"
        return {
            p + "CLIENT_ID": "dev-client",
            p + "CLIENT_SECRET": "dev-secret",
            p + "AUTHORIZE_URL": f"{self.url}/authorize",
            p + "TOKEN_URL": f"{self.url}/token",
            p + "USERINFO_URL": f"{self.url}/userinfo",
            p + "REVOKE_URL": f"{self.url}/revoke",
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Service:
    """The real `user-service serve` on a free port, with its log in a file."""

    def __init__(self, binary: str, env: dict[str, str], workdir: Path, args=("serve",)):
        self.binary = binary
        self.port = free_port()
        self.env = {**os.environ, **env, "LISTEN_ADDR": f"127.0.0.1:{self.port}"}
        self.workdir = workdir
        self.log_path = workdir / f"service-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, *args], env=self.env, cwd=workdir,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                status, _, _ = call("GET", self.base + "/ready")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the service was not ready within {timeout} s:\n{self.tail()}")

    def tail(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return "".join(open(self.log_path).readlines()[-30:])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """A CLI command with the service's configuration."""
        out = subprocess.run([self.binary, *args], env=self.env, cwd=self.workdir,
                             capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise RuntimeError(f"user-service {' '.join(args)} failed:\n{out.stderr}")
        return out

    def get(self, path: str, token: str | None = None, key: str | None = None):
        return call("GET", self.base + path, headers=auth(token, key))

    def send(self, method: str, path: str, body, token=None, key=None, content_type="application/json"):
        return call(method, self.base + path, body, auth(token, key), content_type)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise RuntimeError("the service ignored SIGTERM for 60 s")
        self.log.close()


def auth(token: str | None, key: str | None) -> dict[str, str]:
    if token:
        return {"Authorization": f"Bearer {token}"}
    if key:
        return {"X-API-Key": key}
    return {}


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def clerk_user_created(svc: Service, secret: str, sub: str, email: str, first: str) -> None:
    """What Clerk sends when a user signs up, signed the Svix way."""
    body = json.dumps({
        "type": "user.created",
        "object": "event",
        "data": {
            "id": sub,
            "email_addresses": [{"id": "idn_" + sub, "email_address": email}],
            "primary_email_address_id": "idn_" + sub,
            "first_name": first,
            "last_name": None,
            "updated_at": int(time.time() * 1000),
        },
    })
    msg_id = "msg_" + uuid.uuid4().hex
    ts = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
    status, _, answer = call("POST", svc.base + "/webhooks/clerk", body.encode(), {
        "svix-id": msg_id, "svix-timestamp": ts, "svix-signature": f"v1,{sig}",
    })
    expect(status == 200 and answer == {"status": "processed"}, f"Clerk user.created for {sub} processed ({status} {answer})")


def connect_provider(svc: Service, token: str, provider: str = "google") -> dict:
    """The browser's part of the OAuth dance, against the local test provider."""
    status, _, start = svc.send("POST", f"/users/me/integrations/{provider}/authorize", {}, token)
    expect(status == 200 and "authorization_url" in start, f"authorize {provider}: {status}")
    status, headers, _ = call("GET", start["authorization_url"])
    expect(status == 302, "the provider redirects back with a code")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(headers["Location"]).query)
    status, _, integration = svc.send("POST", f"/users/me/integrations/{provider}",
                                      {"code": query["code"][0], "state": query["state"][0]}, token)
    expect(status == 200 and integration["status"] == "active", f"{provider} connected: {status} {integration}")
    return integration
