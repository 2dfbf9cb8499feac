"""The traffic of a real deployment, at a fixed arrival rate (each user class runs at a
constant throughput, so the offered load does not fall when the service slows down):

  front ends   40 users x 2 req/s  profile and preference reads, some writes with If-Match
  back ends     6 users x 2 req/s  three services fetching users' Google tokens
  Clerk         2 users x 1 req/s  signed user.updated / session.created webhooks
  refreshes     2 users x 0.5/s    forced refreshes against a provider that answers slowly
  probe         1 user  x 1 req/s  a load balancer's /health check (the baseline: figures
                                   on a shared machine are read as ratios to it)

The fixtures (users with session tokens and a connected Google account, service keys, the
webhook secret) are made by run.py and read from LOAD_FIXTURES. Every answer is checked:
anything but the expected status is a failure (so is every 5xx), and run.py fails the run
on any failure.
"""

import json
import os
import random
import time
import uuid

from locust import FastHttpUser, constant_throughput, task
from svix_sign import svix_headers

with open(os.environ["LOAD_FIXTURES"], encoding="utf-8") as f:
    FIXTURES = json.load(f)
USERS = FIXTURES["users"]
THEMES = ["light", "dark", "system"]


def expect(res, *statuses):
    if res.status_code not in statuses:
        res.failure(f"unexpected {res.status_code}: {res.text[:200] if res.text else ''}")
    else:
        res.success()


class FrontEnd(FastHttpUser):
    """A signed-in user's browser: mostly reads, now and then a preference change."""

    fixed_count = 40
    wait_time = constant_throughput(2)

    def on_start(self):
        # Each simulated browser is one user (the fixtures have at least fixed_count).
        index = FrontEnd._next = getattr(FrontEnd, "_next", -1) + 1
        self.user = USERS[index % len(USERS)]
        self.headers = {"Authorization": f"Bearer {self.user['token']}"}
        self.etag = None

    @task(10)
    def profile(self):
        with self.client.get("/users/me", headers=self.headers, name="GET /users/me", catch_response=True) as r:
            expect(r, 200)

    @task(10)
    def preferences(self):
        with self.client.get(
            "/users/me/preferences", headers=self.headers, name="GET /users/me/preferences", catch_response=True
        ) as r:
            expect(r, 200)
            self.etag = r.headers.get("etag") or self.etag

    @task(3)
    def integrations(self):
        with self.client.get(
            "/users/me/integrations", headers=self.headers, name="GET /users/me/integrations", catch_response=True
        ) as r:
            expect(r, 200)

    @task(2)
    def change_theme(self):
        if self.etag is None:
            return self.preferences()
        body = {"ui": {"theme": random.choice(THEMES)}}
        headers = {**self.headers, "If-Match": self.etag, "content-type": "application/json"}
        with self.client.put(
            "/users/me/preferences",
            data=json.dumps(body),
            headers=headers,
            name="PUT /users/me/preferences (If-Match)",
            catch_response=True,
        ) as r:
            # This browser is the only writer of its user: its ETag is always current.
            expect(r, 200)
            self.etag = r.headers.get("etag")
        return None


class BackEnd(FastHttpUser):
    """Back-end services, each with its own key, asking for users' valid Google tokens."""

    fixed_count = 6
    wait_time = constant_throughput(2)

    def on_start(self):
        index = BackEnd._next = getattr(BackEnd, "_next", -1) + 1
        keys = FIXTURES["service_keys"]["tokens_read"]
        self.key = keys[index % len(keys)]

    @task
    def token(self):
        user = random.choice(USERS)
        with self.client.post(
            "/internal/tokens/get",
            data=json.dumps({"user_id": user["sub"], "provider": "google"}),
            headers={"X-API-Key": self.key, "content-type": "application/json"},
            name="POST /internal/tokens/get",
            catch_response=True,
        ) as r:
            expect(r, 200)


class Clerk(FastHttpUser):
    """Clerk's webhooks: profile updates and sign-ins of the users."""

    fixed_count = 2
    wait_time = constant_throughput(1)

    def send(self, event, name):
        body = json.dumps(event)
        headers = svix_headers(FIXTURES["webhook_secret"], body)
        with self.client.post("/webhooks/clerk", data=body, headers=headers, name=name, catch_response=True) as r:
            expect(r, 200)

    @task(1)
    def user_updated(self):
        user = random.choice(USERS)
        now = int(time.time() * 1000)
        self.send(
            {
                "type": "user.updated",
                "object": "event",
                "data": {
                    "id": user["sub"],
                    "object": "user",
                    "email_addresses": [{"id": "idn_1", "email_address": user["email"]}],
                    "primary_email_address_id": "idn_1",
                    "first_name": random.choice(["Ada", "Grace", "Edsger"]),
                    "last_name": "Load",
                    "image_url": None,
                    "created_at": now - 86_400_000,
                    "updated_at": now,
                },
            },
            "POST /webhooks/clerk user.updated",
        )

    @task(2)
    def session_created(self):
        user = random.choice(USERS)
        now = int(time.time() * 1000)
        self.send(
            {
                "type": "session.created",
                "object": "event",
                "data": {
                    "id": f"sess_{uuid.uuid4().hex[:16]}",
                    "object": "session",
                    "user_id": user["sub"],
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                    "last_active_at": now,
                },
            },
            "POST /webhooks/clerk session.created",
        )


class Refresher(FastHttpUser):
    """A service forcing refreshes: each one waits for the slow provider."""

    fixed_count = 2
    wait_time = constant_throughput(0.5)

    @task
    def refresh(self):
        user = random.choice(USERS)
        with self.client.post(
            "/internal/tokens/refresh",
            data=json.dumps({"user_id": user["sub"], "provider": "google"}),
            headers={"X-API-Key": FIXTURES["service_keys"]["tokens_refresh"], "content-type": "application/json"},
            name="POST /internal/tokens/refresh (slow provider)",
            catch_response=True,
        ) as r:
            expect(r, 200)


class Probe(FastHttpUser):
    """A load balancer's health check: the cheapest route, the baseline of the figures."""

    fixed_count = 1
    wait_time = constant_throughput(1)

    @task
    def health(self):
        with self.client.get("/health", name="GET /health", catch_response=True) as r:
            expect(r, 200)
