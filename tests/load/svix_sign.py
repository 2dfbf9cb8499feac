"""Svix webhook signatures, as Clerk sends them: HMAC-SHA256 over `{id}.{timestamp}.{body}`
with the base64 key of a `whsec_…` secret, in `v1,<base64>`."""

import base64
import hashlib
import hmac
import time
import uuid


def svix_headers(secret, body):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id = f"msg_{uuid.uuid4().hex}"
    ts = str(int(time.time()))
    mac = hmac.new(key, f"{msg_id}.{ts}.{body}".encode(), hashlib.sha256).digest()
    return {
        "svix-id": msg_id,
        "svix-timestamp": ts,
        "svix-signature": "v1," + base64.b64encode(mac).decode(),
        "content-type": "application/json",
    }
