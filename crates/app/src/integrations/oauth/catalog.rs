//! The provider catalog: which OAuth providers exist and how each one speaks OAuth. It is
//! data (`config/providers.toml`, embedded), extended by an operator's file and completed
//! by per-deployment settings (client credentials, endpoint overrides, tenant).

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// The built-in catalog.
pub const BUILTIN: &str = include_str!("../../../../../config/providers.toml");

/// How the client authenticates at the token and revocation endpoints (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// HTTP Basic with the URL-encoded id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Which token a revocation sends (RFC 7009 `token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeToken {
    /// The refresh token: revoking it ends the whole grant.
    Refresh,
    /// The access token (for providers that only accept that).
    Access,
}

/// A deployment's credentials for one provider. `Debug` never shows the secret.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    /// The OAuth client id (public).
    pub id: String,
    /// The client secret.
    pub secret: SecretString,
}

/// One provider, with this deployment's settings applied.
#[derive(Clone, Debug)]
pub struct Provider {
    /// Catalog key, e.g. `google`.
    pub name: String,
    /// Shown to users.
    pub display_name: String,
    /// Consent page.
    pub authorize_url: Url,
    /// Code exchange and refresh.
    pub token_url: Url,
    /// RFC 7009 revocation, when the provider has one.
    pub revoke_url: Option<Url>,
    /// Which token revocation sends.
    pub revoke_token: RevokeToken,
    /// The account behind a token (and a cheap health probe).
    pub userinfo_url: Option<Url>,
    /// Scopes asked for when the client names none.
    pub default_scopes: Vec<String>,
    /// How scopes are joined in requests and split in answers.
    pub scope_separator: String,
    /// Whether to send a PKCE S256 challenge.
    pub pkce: bool,
    /// Client authentication at the token endpoint.
    pub token_auth: TokenAuth,
    /// Extra authorize parameters (offline access and the like).
    pub authorize_params: BTreeMap<String, String>,
    /// JSON pointer to the account id in the user info.
    pub account_id: String,
    /// JSON pointer to the account email, if any.
    pub account_email: Option<String>,
    /// Client credentials; `None` when this deployment has not configured the provider.
    pub client: Option<ClientCredentials>,
    /// Where the provider proxy forwards to; `None` when the provider has no fixed one
    /// (Salesforce's API lives on each customer's instance: an operator sets it).
    pub api_base: Option<ApiBase>,
}

/// A provider's API base URL (`https://www.googleapis.com`), the only origin and path
/// prefix the provider proxy forwards to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiBase {
    /// The base, without a trailing slash in its path.
    pub url: Url,
    /// Whether this deployment's configuration named it (`OAUTH_<PROVIDER>_API_BASE_URL`
    /// or the operator's catalog file) rather than the built-in catalog. Only a configured
    /// base may resolve to a private or loopback address.
    pub configured: bool,
}

impl Provider {
    /// Whether users can connect it here (credentials are configured).
    #[must_use]
    pub fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// Whether disconnecting can revoke at the provider.
    #[must_use]
    pub fn can_revoke(&self) -> bool {
        self.revoke_url.is_some()
    }
}

/// Every provider this deployment knows, by name.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    providers: BTreeMap<String, Provider>,
}

/// One catalog entry as written in TOML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    display_name: String,
    authorize_url: String,
    token_url: String,
    revoke_url: Option<String>,
    #[serde(default = "refresh")]
    revoke_token: RevokeToken,
    userinfo_url: Option<String>,
    default_scopes: Vec<String>,
    #[serde(default = "space")]
    scope_separator: String,
    #[serde(default)]
    pkce: bool,
    #[serde(default = "post")]
    token_auth: TokenAuth,
    #[serde(default)]
    authorize_params: BTreeMap<String, String>,
    #[serde(default = "sub")]
    account_id: String,
    account_email: Option<String>,
    tenant: Option<String>,
    api_base_url: Option<String>,
}

fn refresh() -> RevokeToken {
    RevokeToken::Refresh
}
fn space() -> String {
    " ".to_owned()
}
fn post() -> TokenAuth {
    TokenAuth::ClientSecretPost
}
fn sub() -> String {
    "/sub".to_owned()
}

impl Catalog {
    /// Builds the catalog: `builtin`, then `extra` (an operator's file: adds providers or
    /// replaces them by name), then `settings` (`OAUTH_<PROVIDER>_<SETTING>`, keyed by
    /// lower-case provider and setting).
    ///
    /// # Errors
    /// Every problem found: malformed TOML, a bad URL, half-configured credentials, a
    /// setting for a provider no catalog names.
    pub fn build(
        builtin: &str,
        extra: Option<&str>,
        settings: &BTreeMap<String, BTreeMap<String, SecretString>>,
    ) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        // Each entry with whether the operator's file (configuration) wrote it.
        let mut entries: BTreeMap<String, (Entry, bool)> = BTreeMap::new();
        for (origin, text, configured) in [
            ("built-in catalog", Some(builtin), false),
            ("OAUTH_PROVIDERS_FILE", extra, true),
        ] {
            let Some(text) = text else { continue };
            match toml::from_str::<BTreeMap<String, Entry>>(text) {
                Ok(map) => entries.extend(map.into_iter().map(|(k, e)| (k, (e, configured)))),
                Err(e) => errors.push(format!("{origin}: {}", e.message())),
            }
        }
        for name in settings.keys() {
            if !entries.contains_key(name) {
                errors.push(format!(
                    "OAUTH_{}_*: no provider {name:?} in the catalog (add it with OAUTH_PROVIDERS_FILE)",
                    name.to_ascii_uppercase()
                ));
            }
        }
        let empty = BTreeMap::new();
        let mut providers = BTreeMap::new();
        for (name, (entry, from_file)) in entries {
            let set = settings.get(&name).unwrap_or(&empty);
            match provider(&name, entry, set, from_file) {
                Ok(p) => {
                    providers.insert(name, p);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(Self { providers })
        } else {
            Err(errors)
        }
    }

    /// The built-in catalog without any deployment settings (tests, tools).
    ///
    /// # Panics
    /// Never: the built-in catalog is checked by a unit test.
    #[must_use]
    pub fn builtin() -> Self {
        Self::build(BUILTIN, None, &BTreeMap::new()).expect("the built-in catalog is valid")
    }

    /// The provider named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    /// Every provider, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// The names, for validating `default_calendar_provider` and the like.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }
}

fn provider(
    name: &str,
    e: Entry,
    set: &BTreeMap<String, SecretString>,
    from_file: bool,
) -> Result<Provider, Vec<String>> {
    let mut errors = Vec::new();
    let bad_pointers = pointer_errors(name, &e);
    let env = |s: &str| env_name(name, s);
    let plain = |s: &str| set.get(s).map(|v| v.expose_secret().to_owned());
    let tenant = plain("tenant").or(e.tenant).unwrap_or_default();
    let mut url = |setting: &str, value: Option<String>| -> Option<Url> {
        let raw = plain(setting).or(value)?;
        let raw = raw.replace("{tenant}", &tenant);
        match Url::parse(&raw) {
            Ok(u) if matches!(u.scheme(), "https" | "http") => Some(u),
            _ => {
                errors.push(format!(
                    "{name}: {setting} is not an http(s) URL (set by the catalog or {})",
                    env(setting)
                ));
                None
            }
        }
    };
    let authorize_url = url("authorize_url", Some(e.authorize_url));
    let token_url = url("token_url", Some(e.token_url));
    let revoke_url = url("revoke_url", e.revoke_url);
    let userinfo_url = url("userinfo_url", e.userinfo_url);
    let api_configured = from_file || set.contains_key("api_base_url");
    let api_base = url("api_base_url", e.api_base_url).map(|u| ApiBase {
        url: without_trailing_slash(u),
        configured: api_configured,
    });
    let client = client_credentials(name, set).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    errors.extend(bad_pointers);
    match (authorize_url, token_url) {
        (Some(authorize_url), Some(token_url)) if errors.is_empty() => Ok(Provider {
            name: name.to_owned(),
            display_name: e.display_name,
            authorize_url,
            token_url,
            revoke_url,
            revoke_token: e.revoke_token,
            userinfo_url,
            default_scopes: e.default_scopes,
            scope_separator: e.scope_separator,
            pkce: e.pkce,
            token_auth: e.token_auth,
            authorize_params: e.authorize_params,
            account_id: e.account_id,
            account_email: e.account_email,
            client,
            api_base,
        }),
        _ => Err(errors),
    }
}

/// `https://host/v1/` → `https://host/v1`: the proxy joins `/{path}` to it. The root
/// path stays `/` (a URL always has one) and is treated as empty.
fn without_trailing_slash(mut u: Url) -> Url {
    let trimmed = u.path().trim_end_matches('/').to_owned();
    u.set_path(&trimmed);
    u.set_query(None);
    u.set_fragment(None);
    u
}

/// The variable that sets `setting` of provider `name`: `OAUTH_<NAME>_<SETTING>`.
fn env_name(name: &str, setting: &str) -> String {
    format!(
        "OAUTH_{}_{}",
        name.to_ascii_uppercase(),
        setting.to_ascii_uppercase()
    )
}

/// The client id and secret: both or neither (a provider without them is listed but not
/// configured).
fn client_credentials(
    name: &str,
    set: &BTreeMap<String, SecretString>,
) -> Result<Option<ClientCredentials>, String> {
    let id = set.get("client_id").map(|v| v.expose_secret().to_owned());
    match (id, set.get("client_secret")) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.expose_secret().is_empty() => {
            Ok(Some(ClientCredentials {
                id,
                secret: secret.clone(),
            }))
        }
        (None, None) => Ok(None),
        _ => Err(format!(
            "{name}: set both {} and {}",
            env_name(name, "client_id"),
            env_name(name, "client_secret")
        )),
    }
}

/// The account pointers that are not JSON pointers.
fn pointer_errors(name: &str, e: &Entry) -> Vec<String> {
    [
        ("account_id", Some(&e.account_id)),
        ("account_email", e.account_email.as_ref()),
    ]
    .into_iter()
    .filter(|(_, pointer)| pointer.is_some_and(|p| !p.starts_with('/')))
    .map(|(what, _)| format!("{name}: {what} must be a JSON pointer such as /sub"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str, &str)]) -> BTreeMap<String, BTreeMap<String, SecretString>> {
        let mut m: BTreeMap<String, BTreeMap<String, SecretString>> = BTreeMap::new();
        for (p, k, v) in pairs {
            m.entry((*p).to_owned())
                .or_default()
                .insert((*k).to_owned(), SecretString::from(*v));
        }
        m
    }

    #[test]
    fn builtin_catalog_has_the_contracted_providers() {
        let c = Catalog::builtin();
        for name in [
            "google",
            "microsoft",
            "github",
            "slack",
            "notion",
            "dropbox",
            "atlassian",
            "zoom",
            "hubspot",
            "salesforce",
            "linear",
        ] {
            let p = c.get(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(!p.is_configured(), "{name}");
        }
        let g = c.get("google").unwrap();
        assert_eq!(g.authorize_params["access_type"], "offline");
        assert_eq!(g.authorize_params["prompt"], "consent");
        assert!(g.can_revoke() && g.pkce);
        let m = c.get("microsoft").unwrap();
        assert!(!m.can_revoke());
        assert!(m.default_scopes.iter().any(|s| s == "offline_access"));
        assert_eq!(
            m.token_url.as_str(),
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        let api = |name: &str| c.get(name).and_then(|p| p.api_base.clone());
        let google = api("google").expect("google has an API base");
        assert_eq!(google.url.as_str(), "https://www.googleapis.com/");
        assert!(
            !google.configured,
            "the built-in catalog is not configuration"
        );
        assert_eq!(
            api("microsoft").expect("microsoft").url.as_str(),
            "https://graph.microsoft.com/"
        );
        assert!(
            api("salesforce").is_none(),
            "each customer has its own instance"
        );
    }

    #[test]
    fn an_api_base_override_is_configuration() {
        let s = settings(&[("google", "api_base_url", "http://127.0.0.1:9999/api/")]);
        let c = Catalog::build(BUILTIN, None, &s).unwrap();
        let g = c.get("google").unwrap().api_base.clone().unwrap();
        assert_eq!(g.url.as_str(), "http://127.0.0.1:9999/api");
        assert!(g.configured);
        let s = settings(&[("google", "api_base_url", "ftp://nope")]);
        let all = Catalog::build(BUILTIN, None, &s).unwrap_err().join("\n");
        assert!(all.contains("OAUTH_GOOGLE_API_BASE_URL"), "{all}");
    }

    #[test]
    fn settings_configure_and_override() {
        let s = settings(&[
            ("google", "client_id", "cid"),
            ("google", "client_secret", "csecret"),
            ("google", "token_url", "http://127.0.0.1:9999/token"),
            ("microsoft", "tenant", "contoso.onmicrosoft.com"),
        ]);
        let c = Catalog::build(BUILTIN, None, &s).unwrap();
        let g = c.get("google").unwrap();
        assert!(g.is_configured());
        assert_eq!(g.token_url.as_str(), "http://127.0.0.1:9999/token");
        assert!(
            !format!("{g:?}").contains("csecret"),
            "Debug hides the secret"
        );
        assert!(
            c.get("microsoft")
                .unwrap()
                .authorize_url
                .as_str()
                .contains("/contoso.onmicrosoft.com/")
        );
    }

    #[test]
    fn an_operator_file_adds_providers_and_errors_are_collected() {
        let extra = r#"
[acme]
display_name = "Acme ID"
authorize_url = "https://id.acme.test/authorize"
token_url = "https://id.acme.test/token"
revoke_url = "https://id.acme.test/revoke"
userinfo_url = "https://id.acme.test/userinfo"
default_scopes = ["openid", "offline_access"]
token_auth = "client_secret_basic"
"#;
        let c = Catalog::build(BUILTIN, Some(extra), &BTreeMap::new()).unwrap();
        let a = c.get("acme").unwrap();
        assert_eq!(a.token_auth, TokenAuth::ClientSecretBasic);
        assert_eq!(a.account_id, "/sub");
        assert_eq!(a.revoke_token, RevokeToken::Refresh);

        let s = settings(&[
            ("nosuch", "client_id", "x"),
            ("github", "client_id", "only-the-id"),
            ("zoom", "token_url", "ftp://zoom"),
        ]);
        let errors = Catalog::build(BUILTIN, Some("[bad]\nnope = 1"), &s).unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "OAUTH_PROVIDERS_FILE",
            "OAUTH_NOSUCH_*",
            "OAUTH_GITHUB_CLIENT_SECRET",
            "OAUTH_ZOOM_TOKEN_URL",
        ] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
    }
}
