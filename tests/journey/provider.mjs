// A real, standards-conforming OpenID provider (panva's oidc-provider) standing in for Google
// in the browser journey. Its own login and consent pages (the library's development
// interactions) are what the user sees; PKCE is required, refresh tokens are issued,
// revocation (RFC 7009) and introspection are on, and access tokens are short-lived so the
// service's refresh is due during the journey.
//
// Environment: PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS (comma-separated),
// ACCESS_TOKEN_TTL (seconds). Prints `oidc-provider ready <issuer>` once listening.
//
// Besides the OpenID endpoints it serves `GET /test/events`: what the provider observed
// (code exchanges, refreshes, revocations, revoked grants), so the journey checks at the
// provider itself that disconnecting revoked the grant.
import http from "node:http";
import Provider from "oidc-provider";

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} must be set`);
  return v;
};
const port = Number(env("PORT"));
const issuer = `http://127.0.0.1:${port}`;
const events = [];
const record = (kind, detail) => events.push({ kind, at: new Date().toISOString(), ...detail });

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: env("CLIENT_ID"),
      client_secret: env("CLIENT_SECRET"),
      redirect_uris: env("REDIRECT_URIS").split(","),
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      // The google catalog entry authenticates this way (config/providers.toml).
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.test`, email_verified: true, name: `Journey ${id}` };
      },
    };
  },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  scopes: ["openid", "offline_access", "email", "profile"],
  // Google hands out a refresh token for `access_type=offline` (which the service always
  // sends) rather than for an `offline_access` scope; grants outlive the browser session.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
  expiresWithSession: async () => false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  ttl: {
    AccessToken: Number(env("ACCESS_TOKEN_TTL", "120")),
    AuthorizationCode: 60,
    Grant: 86400,
    IdToken: 3600,
    Interaction: 600,
    RefreshToken: 86400,
    Session: 3600,
  },
  cookies: { keys: ["journey-cookie-key-only-for-the-test"] },
  // Google's own token endpoint rotates nothing; rotation would be fine too (the service
  // stores a rotated refresh token), but a fixed one lets the journey reason about grants.
  rotateRefreshToken: false,
});
provider.proxy = false;

provider.on("grant.success", (ctx) => record("grant.success", { grant_type: ctx.oidc.params.grant_type }));
provider.on("grant.error", (ctx, err) =>
  record("grant.error", { grant_type: ctx.oidc.params?.grant_type, error: err.error ?? String(err) }),
);
provider.on("grant.revoked", (_ctx, grantId) => record("grant.revoked", { grantId }));
provider.on("revocation.error", (_ctx, err) => record("revocation.error", { error: err.error ?? String(err) }));
provider.on("refresh_token.destroyed", (token) => record("refresh_token.destroyed", { grantId: token.grantId }));
provider.on("server_error", (_ctx, err) => record("server_error", { error: String(err) }));

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url === "/test/events") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ items: events }));
    return;
  }
  callback(req, res);
});
server.listen(port, "127.0.0.1", () => console.log(`oidc-provider ready ${issuer}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
