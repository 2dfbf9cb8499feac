// The user's journey through the example front end, in headless Chromium (Debian's, driven
// by playwright-core), against the release binary and a real OpenID provider standing in
// for Google (provider.mjs). Run by scripts/test.d/60-journey.sh, which starts everything
// and passes: WEB_URL, SERVICE_URL, PROVIDER_URL, SESSION_TOKEN (`user-service dev token`),
// CLERK_SUB, SERVICE_KEY (`user-service service-key create`, tokens:read), ARTIFACTS
// (screenshots land there), CHROMIUM (the browser binary).
//
// Every step asserts what a user (or a back-end service) would see; any failure exits 1
// with a screenshot of the page at that moment.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} must be set`);
  return v;
};
const WEB = need("WEB_URL");
const SERVICE = need("SERVICE_URL");
const PROVIDER = need("PROVIDER_URL");
const TOKEN = need("SESSION_TOKEN");
const SUB = need("CLERK_SUB");
const SERVICE_KEY = need("SERVICE_KEY");
const ARTIFACTS = need("ARTIFACTS");
mkdirSync(ARTIFACTS, { recursive: true });

const log = (...a) => console.log(`[journey ${new Date().toISOString().slice(11, 19)}]`, ...a);
let shot = 0;
const screenshot = async (page, name) => {
  const file = join(ARTIFACTS, `${String(++shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log("screenshot", file);
};

async function json(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A back-end service asking user-service for the user's Google token. */
async function serviceToken(body) {
  const res = await fetch(`${SERVICE}/internal/tokens/get`, {
    method: "POST",
    headers: { "X-API-Key": SERVICE_KEY, "content-type": "application/json" },
    body: JSON.stringify({ user_id: SUB, provider: "google", ...body }),
  });
  return { status: res.status, body: await json(res) };
}

async function providerUserinfo(accessToken) {
  const res = await fetch(`${PROVIDER}/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
  return { status: res.status, body: await json(res) };
}

async function providerEvents() {
  return (await json(await fetch(`${PROVIDER}/test/events`))).items;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
// Everything stays on loopback: the provider's page imports a web font, which is refused here.
const outside = [];
await context.route("**/*", (route) => {
  const host = new URL(route.request().url()).hostname;
  if (host === "127.0.0.1" || host === "localhost") return route.continue();
  outside.push(route.request().url());
  return route.abort();
});
const page = await context.newPage();
page.setDefaultTimeout(20_000);
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
page.on("console", (m) => m.type() === "error" && log("browser console:", m.text()));

const status = () => page.getByTestId("status-google");

try {
  // 1. Sign in (development mode): paste the token `user-service dev token` printed.
  log("sign in");
  await page.goto(`${WEB}/`);
  await page.waitForURL(`${WEB}/sign-in`);
  await page.locator("textarea[name=token]").fill(TOKEN);
  await screenshot(page, "sign-in");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${WEB}/`);
  await page.getByTestId("email").waitFor();
  assert.equal(await page.getByTestId("email").textContent(), `${SUB}@example.com`);

  // 2. Edit the profile.
  log("edit the profile");
  await page.locator("input[name=first_name]").fill("Ada");
  await page.locator("input[name=last_name]").fill("Lovelace");
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.locator("section[aria-label=profile] .ok").waitFor();
  await screenshot(page, "profile-saved");

  // 3. Change the theme, reload, see it kept.
  log("change the theme");
  await page.locator("select[name=theme]").selectOption("dark");
  await page.getByRole("button", { name: "Save preferences" }).click();
  await page.locator("section[aria-label=preferences] .ok").waitFor();
  await page.reload();
  await page.getByTestId("prefs-version").waitFor();
  assert.equal(await page.locator("select[name=theme]").inputValue(), "dark", "theme after reload");
  assert.equal(await page.locator("html").getAttribute("data-theme"), "dark");
  await screenshot(page, "theme-dark-after-reload");

  // 4. The 412 path: the document changes elsewhere (another device), then this tab saves
  //    with its now stale ETag: nothing is written and the page says so.
  log("stale If-Match");
  const current = await fetch(`${SERVICE}/users/me/preferences`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const elsewhere = await fetch(`${SERVICE}/users/me/preferences`, {
    method: "PUT",
    headers: {
      Authorization: `Bearer ${TOKEN}`,
      "content-type": "application/json",
      "If-Match": current.headers.get("etag"),
    },
    body: JSON.stringify({ ui: { density: "compact" } }),
  });
  assert.equal(elsewhere.status, 200, "write from another device");
  await page.locator("select[name=theme]").selectOption("light");
  await page.getByRole("button", { name: "Save preferences" }).click();
  await page.locator('[data-problem-type="precondition_failed"]').waitFor();
  await screenshot(page, "precondition-failed");
  await page.getByRole("button", { name: "Load the latest" }).click();
  await page.locator('[data-problem-type="precondition_failed"]').waitFor({ state: "detached" });
  await page.locator("select[name=theme]").selectOption("light");
  await page.getByRole("button", { name: "Save preferences" }).click();
  await page.locator("section[aria-label=preferences] .ok").waitFor();
  const prefs = await json(
    await fetch(`${SERVICE}/users/me/preferences`, { headers: { Authorization: `Bearer ${TOKEN}` } }),
  );
  assert.equal(prefs.ui.theme, "light");
  assert.equal(prefs.ui.density, "compact", "the other device's change is kept");

  // 5. Connect Google: authorize → the provider's own login and consent pages → callback.
  log("connect google");
  assert.equal(await status().textContent(), "not connected");
  await page.getByRole("button", { name: "Connect Google" }).click();
  await page.waitForURL(`${PROVIDER}/**`);
  await page.locator("input[name=login]").waitFor();
  await page.locator("input[name=login]").fill("ada");
  await page.locator("input[name=password]").fill("any password");
  await screenshot(page, "provider-sign-in");
  await page.locator("button[type=submit]").click();
  await page.getByRole("button", { name: "Continue" }).waitFor();
  await screenshot(page, "provider-consent");
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForURL((url) => url.origin === WEB && url.pathname === "/integrations/google/callback");
  await page.getByTestId("connected").waitFor();
  assert.match(await page.getByTestId("connected").textContent(), /ada@example\.test \(active\)/);
  await screenshot(page, "callback-connected");
  await page.getByRole("link", { name: "Back to your account" }).click();
  await page.waitForURL(`${WEB}/`);
  await status().filter({ hasText: "active" }).waitFor();
  await screenshot(page, "integration-active");
  const exchanges = (await providerEvents()).filter((e) => e.kind === "grant.success");
  assert.deepEqual(
    exchanges.map((e) => e.grant_type),
    ["authorization_code"],
    "one code exchange at the provider",
  );

  // 6. A back-end service fetches the token with its service key and calls the provider.
  log("back-end fetches the token");
  const first = await serviceToken({ min_validity_seconds: 0 });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.refreshed, false);
  assert.equal(first.body.account_email, "ada@example.test");
  const info = await providerUserinfo(first.body.access_token);
  assert.equal(info.status, 200, JSON.stringify(info.body));
  assert.equal(info.body.sub, "ada");

  // 7. The token is refreshed when due: the provider's access tokens live 120 s, so the
  //    default min_validity_seconds (300) is more than what is left.
  log("refresh when due");
  const second = await serviceToken({});
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.equal(second.body.refreshed, true, "refreshed because it expires within 300 s");
  assert.notEqual(second.body.access_token, first.body.access_token);
  assert.equal((await providerUserinfo(second.body.access_token)).status, 200, "the new token works");
  const third = await serviceToken({ min_validity_seconds: 60 });
  assert.equal(third.body.refreshed, false, "a fresh token is handed out as is");
  assert.equal(third.body.access_token, second.body.access_token);
  const grants = (await providerEvents()).filter((e) => e.kind === "grant.success").map((e) => e.grant_type);
  assert.deepEqual(grants, ["authorization_code", "refresh_token"], "exactly one refresh at the provider");
  await page.reload();
  await status().filter({ hasText: "active" }).waitFor();
  await screenshot(page, "after-refresh");

  // 8. Disconnect: the service revokes the grant at the provider.
  log("disconnect");
  await page.getByRole("button", { name: "Disconnect Google" }).click();
  await status().filter({ hasText: "not connected" }).waitFor();
  await screenshot(page, "disconnected");
  const events = await providerEvents();
  assert.ok(
    events.some((e) => e.kind === "grant.revoked"),
    `the provider saw the grant revoked: ${JSON.stringify(events)}`,
  );
  const after = await providerUserinfo(second.body.access_token);
  assert.equal(after.status, 401, "the revoked grant's access token no longer works at the provider");
  const gone = await serviceToken({});
  assert.equal(gone.status, 404, `no token after disconnecting: ${JSON.stringify(gone.body)}`);

  assert.deepEqual(pageErrors, [], "no uncaught error in the page");
  log(`passed; ${outside.length} request(s) off loopback refused: ${[...new Set(outside.map((u) => new URL(u).host))]}`);
} catch (e) {
  await screenshot(page, "FAILED").catch(() => {});
  writeFileSync(join(ARTIFACTS, "failure.txt"), `${e.stack ?? e}\n\npage errors: ${pageErrors.join("\n")}\n`);
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
