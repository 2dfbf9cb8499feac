"""A small OAuth 2.0 provider for the load test, slow where real ones are: the refresh grant
answers after PROVIDER_DELAY_MS. The authorize endpoint consents at once (a 302 back with a
code), the token endpoint checks the PKCE verifier (S256) and the client secret, userinfo
answers the account. Standard library only; loopback only.

    python3 slow_provider.py PORT CLIENT_ID CLIENT_SECRET DELAY_MS
"""

import base64
import hashlib
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

PORT, CLIENT_ID, CLIENT_SECRET, DELAY_MS = (
    int(sys.argv[1]),
    sys.argv[2],
    sys.argv[3],
    int(sys.argv[4]),
)
# Long-lived access tokens: token fetches hand out the stored token; only the explicit
# refreshes of the mix reach the (slow) refresh grant.
ACCESS_TTL = 3600

lock = threading.Lock()
codes = {}  # code -> (account, code_challenge, redirect_uri)
refresh_tokens = {}  # refresh token -> account
access_tokens = {}  # access token -> account
counts = {"authorization_code": 0, "refresh_token": 0, "revoke": 0}
accounts = iter(range(1, 10**9))


def b64url_sha256(text):
    digest = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: thousands of requests
        pass

    def answer(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def form(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode()
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/authorize":
            if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256":
                return self.answer(400, {"error": "invalid_request"})
            code = secrets.token_urlsafe(24)
            with lock:
                codes[code] = (f"acct-{next(accounts)}", q["code_challenge"], q["redirect_uri"])
            target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
            self.send_response(302)
            self.send_header("location", target)
            self.send_header("content-length", "0")
            self.end_headers()
            return None
        if url.path == "/userinfo":
            token = (self.headers.get("authorization") or "").removeprefix("Bearer ")
            with lock:
                account = access_tokens.get(token)
            if account is None:
                return self.answer(401, {"error": "invalid_token"})
            return self.answer(200, {"sub": account, "email": f"{account}@example.test"})
        if url.path == "/stats":
            with lock:
                return self.answer(200, dict(counts))
        return self.answer(404, {"error": "not_found"})

    def issue(self, account, with_refresh):
        access = secrets.token_urlsafe(32)
        body = {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL,
                "scope": "openid email profile"}
        with lock:
            access_tokens[access] = account
            if with_refresh:
                refresh = secrets.token_urlsafe(32)
                refresh_tokens[refresh] = account
                body["refresh_token"] = refresh
        return self.answer(200, body)

    def do_POST(self):
        url = urlparse(self.path)
        f = self.form()
        if f.get("client_id") != CLIENT_ID or f.get("client_secret") != CLIENT_SECRET:
            return self.answer(401, {"error": "invalid_client"})
        if url.path == "/revoke":
            with lock:
                refresh_tokens.pop(f.get("token"), None)
                counts["revoke"] += 1
            return self.answer(200, {})
        if url.path != "/token":
            return self.answer(404, {"error": "not_found"})
        grant = f.get("grant_type")
        if grant == "authorization_code":
            with lock:
                found = codes.pop(f.get("code"), None)
                counts["authorization_code"] += 1
            if found is None or b64url_sha256(f.get("code_verifier", "")) != found[1]:
                return self.answer(400, {"error": "invalid_grant"})
            if f.get("redirect_uri") != found[2]:
                return self.answer(400, {"error": "invalid_grant"})
            return self.issue(found[0], with_refresh=True)
        if grant == "refresh_token":
            time.sleep(DELAY_MS / 1000)  # the slow part
            with lock:
                account = refresh_tokens.get(f.get("refresh_token"))
                counts["refresh_token"] += 1
            if account is None:
                return self.answer(400, {"error": "invalid_grant"})
            # Like Google: no new refresh token; the stored one stays.
            return self.issue(account, with_refresh=False)
        return self.answer(400, {"error": "unsupported_grant_type"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


if __name__ == "__main__":
    server = Server(("127.0.0.1", PORT), Handler)
    print(f"slow provider ready on 127.0.0.1:{PORT}", flush=True)
    server.serve_forever()
