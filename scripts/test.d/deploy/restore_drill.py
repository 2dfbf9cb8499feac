"""The restore drill of docs/backup-restore.md, on one engine, with the real binary:

    python restore_drill.py sqlite|postgres BINARY WORKDIR

1. populate a database through the API: three users (Clerk webhooks), preferences and a
   profile changed, Google connected against the local test provider, a service key, a token
   handed out (and audited);
2. back it up while the service runs: `VACUUM INTO` (SQLite), `pg_dump -Fc` (Postgres);
3. restore into a fresh database: a copy of the snapshot, `pg_restore` into a new database;
4. start the service on it (`serve --no-migrate`: the schema came with the backup) with the
   same keyring and a fresh data folder: the users, preferences and integration read back,
   the same service key hands out the same access token (it still decrypts), and
   `audit verify` passes.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

from drill import Provider, Service, clerk_user_created, connect_provider, expect, new_webhook_secret

USERS = [("user_drill1", "ada@example.com", "Ada"),
         ("user_drill2", "grace@example.com", "Grace"),
         ("user_drill3", "edsger@example.com", "Edsger")]


def pg(tool: str) -> str:
    return os.path.join(os.environ["PG_BIN"], tool)


def pg_url(name: str) -> str:
    admin = os.environ["TEST_DATABASE_URL"]
    return admin.rsplit("/", 1)[0] + "/" + name


def psql(sql: str) -> None:
    subprocess.run([pg("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", os.environ["TEST_DATABASE_URL"], "-c", sql],
                   check=True)


def base_env(db_url: str, data_dir: Path, keys: str, secret: str, provider: Provider) -> dict[str, str]:
    return {
        "ENVIRONMENT": "development",
        "DATABASE_URL": db_url,
        "DATA_DIR": str(data_dir),
        "TOKEN_ENCRYPTION_KEYS": keys,
        "CLERK_WEBHOOK_SECRET": secret,
        "OAUTH_REDIRECT_URI": "http://127.0.0.1:3000/oauth/callback",
        "OAUTH_ALLOWED_REDIRECT_URIS": "http://127.0.0.1:3000/oauth/callback",
        "JOBS_WORKER": "false",
        "RUST_LOG": "warn",
        "LOG_FORMAT": "text",
        **provider.env(),
    }


def populate(svc: Service, secret: str) -> dict:
    for sub, email, first in USERS:
        clerk_user_created(svc, secret, sub, email, first)
    token = svc.cli("dev", "token", "--sub", "user_drill1").stdout.strip()
    status, _, prefs = svc.send("PATCH", "/users/me/preferences", {"ui": {"theme": "dark", "timezone": "Europe/Paris"}},
                                token, content_type="application/merge-patch+json")
    expect(status == 200 and prefs["ui"]["theme"] == "dark", "preferences changed")
    status, _, user = svc.send("PATCH", "/users/me", {"last_name": "Lovelace"}, token)
    expect(status == 200, "profile changed")
    connect_provider(svc, token)
    key = svc.cli("service-key", "create", "--name", "drill", "--permissions", "tokens:read,users:read").stdout.strip()
    expect(key.startswith("usk_"), "service key created")
    status, _, handed = svc.send("POST", "/internal/tokens/get", {"user_id": "user_drill1", "provider": "google"}, key=key)
    expect(status == 200 and handed["access_token"].startswith("fake-at-"), "token handed out before the backup")
    return {"user": user, "prefs_version": prefs["version"], "key": key, "access_token": handed["access_token"]}


def backup_and_restore(engine: str, source_url: str, work: Path) -> str:
    if engine == "sqlite":
        source = source_url.removeprefix("sqlite://")
        snapshot = work / "backup" / "user-service.db"
        snapshot.parent.mkdir()
        t = time.monotonic()
        with sqlite3.connect(source) as conn:
            conn.execute("VACUUM INTO ?", (str(snapshot),))
        with sqlite3.connect(snapshot) as conn:
            expect(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok",
                   f"VACUUM INTO snapshot passes integrity_check ({time.monotonic() - t:.2f} s)")
        restored = work / "restored" / "user-service.db"
        restored.parent.mkdir()
        shutil.copy(snapshot, restored)
        return f"sqlite://{restored}"
    dump = work / "user-service.dump"
    t = time.monotonic()
    subprocess.run([pg("pg_dump"), "-Fc", "--no-owner", "-d", source_url, "-f", str(dump)], check=True)
    expect(dump.stat().st_size > 0, f"pg_dump -Fc wrote {dump.stat().st_size} bytes ({time.monotonic() - t:.2f} s)")
    name = "drill_restored_" + uuid.uuid4().hex[:8]
    psql(f"CREATE DATABASE {name}")
    subprocess.run([pg("pg_restore"), "--no-owner", "--exit-on-error", "-d", pg_url(name), str(dump)], check=True)
    return pg_url(name)


def check_restored(svc: Service, before: dict) -> None:
    token = svc.cli("dev", "token", "--sub", "user_drill1").stdout.strip()
    status, _, user = svc.get("/users/me", token)
    expect(status == 200 and user["id"] == before["user"]["id"] and user["email"] == "ada@example.com"
           and user["last_name"] == "Lovelace", "user read back (same id, email, profile)")
    # An admin's authority needs a live user behind it: one of the restored users.
    admin = svc.cli("dev", "token", "--sub", "user_drill1", "--admin").stdout.strip()
    status, _, users = svc.get("/users?limit=100", admin)
    expect(status == 200 and sorted(u["clerk_user_id"] for u in users["items"]) == [u[0] for u in USERS],
           "all three users read back")
    status, headers, prefs = svc.get("/users/me/preferences", token)
    expect(status == 200 and prefs["ui"]["theme"] == "dark" and prefs["ui"]["timezone"] == "Europe/Paris"
           and prefs["version"] == before["prefs_version"], "preferences read back (same version)")
    status, _, history = svc.get("/users/me/preferences/history", token)
    expect(status == 200 and len(history["items"]) >= 1, "preference history read back")
    status, _, integrations = svc.get("/users/me/integrations", token)
    google = [i for i in integrations["items"] if i["provider"] == "google"]
    expect(status == 200 and len(google) == 1 and google[0]["status"] == "active"
           and google[0]["account_email"] == "ada@example.com", "integration read back")
    status, _, handed = svc.send("POST", "/internal/tokens/get", {"user_id": "user_drill1", "provider": "google"},
                                 key=before["key"])
    expect(status == 200 and handed["access_token"] == before["access_token"] and handed["refreshed"] is False,
           "the restored service key hands out the same token: it decrypts with the same keyring")


def main() -> int:
    engine, binary, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    keys = "1:" + base64.b64encode(os.urandom(32)).decode()
    secret = new_webhook_secret()
    provider = Provider()
    created: list[str] = []
    services: list[Service] = []
    try:
        if engine == "sqlite":
            source_url = f"sqlite://{work / 'source' / 'user-service.db'}"
        else:
            name = "drill_source_" + uuid.uuid4().hex[:8]
            psql(f"CREATE DATABASE {name}")
            created.append(name)
            source_url = pg_url(name)
        t = time.monotonic()
        svc = Service(binary, base_env(source_url, work / "data-source", keys, secret, provider), work)
        services.append(svc)
        before = populate(svc, secret)
        restored_url = backup_and_restore(engine, source_url, work)
        if engine == "postgres":
            created.append(restored_url.rsplit("/", 1)[1])
        svc.stop()
        # A fresh machine: new data folder (new development signing key), same keyring.
        env = base_env(restored_url, work / "data-restored", keys, secret, provider)
        restored = Service(binary, env, work, args=("serve", "--no-migrate"))
        services.append(restored)
        check_restored(restored, before)
        restored.stop()
        out = restored.cli("audit", "verify", check=False)
        expect(out.returncode == 0, f"audit verify passes on the restored database: {out.stdout.strip()} {out.stderr.strip()[-300:]}")
        print(f"restore drill on {engine}: passed in {time.monotonic() - t:.1f} s")
        return 0
    except Exception:
        for s in services:
            print(f"--- {s.log_path.name} (last lines)\n{s.tail()}", file=sys.stderr)
        raise
    finally:
        for s in services:
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - best effort while failing
                pass
        provider.stop()
        for name in created:
            psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
