// Sends Clerk's `user.created` webhook for one user, signed the Svix way (HMAC-SHA256 over
// `{id}.{timestamp}.{body}` with the base64 key of CLERK_WEBHOOK_SECRET=whsec_…), as Clerk
// would after a sign-up.   node clerk-webhook.mjs SERVICE_URL USER_ID EMAIL
import { createHmac, randomUUID } from "node:crypto";

const [service, id, email] = process.argv.slice(2);
const secret = process.env.CLERK_WEBHOOK_SECRET;
if (!service || !id || !email || !secret?.startsWith("whsec_")) {
  console.error("usage: CLERK_WEBHOOK_SECRET=whsec_… node clerk-webhook.mjs SERVICE_URL USER_ID EMAIL");
  process.exit(2);
}
const now = Date.now();
const body = JSON.stringify({
  type: "user.created",
  object: "event",
  data: {
    id,
    object: "user",
    email_addresses: [{ id: "idn_primary", email_address: email }],
    primary_email_address_id: "idn_primary",
    first_name: null,
    last_name: null,
    image_url: null,
    created_at: now,
    updated_at: now,
  },
});
const msgId = `msg_${randomUUID()}`;
const ts = Math.floor(now / 1000);
const key = Buffer.from(secret.slice("whsec_".length), "base64");
const signature = createHmac("sha256", key).update(`${msgId}.${ts}.${body}`).digest("base64");
const res = await fetch(`${service}/webhooks/clerk`, {
  method: "POST",
  headers: { "content-type": "application/json", "svix-id": msgId, "svix-timestamp": String(ts), "svix-signature": `v1,${signature}` },
  body,
});
const text = await res.text();
if (res.status !== 200 || !text.includes('"processed"')) {
  console.error(`webhook answered ${res.status}: ${text}`);
  process.exit(1);
}
console.log(`created ${id} through the user.created webhook`);
