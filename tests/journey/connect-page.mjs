// The hosted connect page in a real headless Chromium (scripts/test.d/47-connect-page.sh):
// an opener page on the configured front-end origin opens the connect URL in a pop-up,
// the pop-up goes through a fake OAuth provider (served here, consenting at once) and the
// service's callback, the opener receives the postMessage (status "connected", from the
// service's origin) and the pop-up closes itself. Then the used URL opened again, without
// an opener, shows its error page with the close button. Any CSP violation fails.
//
// Environment: SVC (service base URL), WEB_PORT, IDP_PORT, CONNECT_URL (a fresh session's
// page URL), USED_CHECK=1.
import http from "node:http";
import { chromium } from "playwright-core";

const { SVC, WEB_PORT, IDP_PORT, CONNECT_URL } = process.env;
const fail = (msg) => {
  console.error(`connect-page: ${msg}`);
  process.exit(1);
};

// --- the fake provider: consent at once, tokens for any code, the account ----------------
const idp = http.createServer((req, res) => {
  const url = new URL(req.url, `http://127.0.0.1:${IDP_PORT}`);
  if (url.pathname === "/authorize") {
    const back = new URL(url.searchParams.get("redirect_uri"));
    back.searchParams.set("code", "browser-code-1");
    back.searchParams.set("state", url.searchParams.get("state"));
    res.writeHead(302, { location: back.toString() }).end();
  } else if (url.pathname === "/token" && req.method === "POST") {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({
        access_token: "browser-access-token", refresh_token: "browser-refresh-token",
        token_type: "Bearer", expires_in: 3600, scope: "openid email profile",
      }));
    });
  } else if (url.pathname === "/userinfo") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ sub: "1234567890", email: "ada@example.com" }));
  } else {
    res.writeHead(404).end();
  }
});

// --- the front end: records every message it receives -------------------------------------
const OPENER = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Front end</title></head>
<body><h1>Front end</h1><script>
window.received = [];
window.addEventListener("message", (e) => window.received.push({ origin: e.origin, data: e.data }));
</script></body></html>`;
const web = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(OPENER);
});

await new Promise((r) => idp.listen(Number(IDP_PORT), "127.0.0.1", r));
await new Promise((r) => web.listen(Number(WEB_PORT), "127.0.0.1", r));

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const violations = [];
try {
  const context = await browser.newContext();
  // Reported by the page itself, pop-ups included (injected outside the page's CSP).
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      console.error(`CSP-VIOLATION ${e.violatedDirective} ${e.blockedURI}`));
  });
  context.on("page", (p) => p.on("console", (m) => {
    if (/CSP-VIOLATION|Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  }));
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${WEB_PORT}/`);
  const [popup] = await Promise.all([
    page.waitForEvent("popup"),
    page.evaluate((u) => { window.popup = window.open(u, "connect", "popup,width=480,height=640"); }, CONNECT_URL),
  ]);
  if (!popup.isClosed()) await popup.waitForEvent("close", { timeout: 30000 });
  await page.waitForFunction(() => window.received.length > 0, null, { timeout: 10000 });
  const received = await page.evaluate(() => window.received);
  console.log("opener received:", JSON.stringify(received));
  const [msg] = received;
  if (received.length !== 1) fail(`expected one message, got ${received.length}`);
  if (msg.origin !== SVC) fail(`message from ${msg.origin}, not the service ${SVC}`);
  const d = msg.data;
  if (d.type !== "user-service:connect" || d.provider !== "google" || d.status !== "connected") {
    fail(`unexpected message ${JSON.stringify(d)}`);
  }
  if (!(await page.evaluate(() => window.popup.closed))) fail("the pop-up did not close");

  // The same URL again, in a tab of its own (no opener): the page says why and can be closed.
  const again = await context.newPage();
  const res = await again.goto(CONNECT_URL);
  if (res.status() !== 410) fail(`second use answered ${res.status()}, not 410`);
  const text = await again.locator("#outcome").textContent();
  if (!/already been used/.test(text)) fail(`error page says ${JSON.stringify(text)}`);
  if (!(await again.getByRole("button", { name: "Close this window" }).isVisible())) {
    fail("no visible close button");
  }
  if ((await again.getAttribute("html", "lang")) !== "en") fail("no lang on the page");
  if (CONNECT_URL.split("session=")[1] && (await again.content()).includes(CONNECT_URL.split("session=")[1])) {
    fail("the session secret is echoed in the page");
  }
  if (violations.length) fail(`CSP violations:\n${violations.join("\n")}`);
  console.log("connect page: pop-up connected, told its opener, closed; no CSP violation");
} finally {
  await browser.close();
  idp.close();
  web.close();
}
