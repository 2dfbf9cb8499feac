//! The three configuration layers flattened into one key → value map, and a parser that
//! turns values into types while collecting every error (not just the first).

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    str::FromStr,
};

use secrecy::SecretString;

use super::ConfigError;
use app::events::Subscriber;

/// The built-in defaults: this file documents every setting and is the only place a
/// default is written.
const DEFAULTS: &str = include_str!("../../../../config/default.toml");

/// Flattened settings: lower-case key → (value, set by file or environment).
pub(super) struct Layers {
    values: HashMap<String, (String, bool)>,
    oauth: BTreeMap<String, BTreeMap<String, SecretString>>,
    /// The file's `[preferences_defaults]` table (a partial preferences document), if any.
    preferences_defaults: Option<toml::Table>,
}

impl Layers {
    pub(super) fn build(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let mut values: HashMap<String, (String, bool)> = HashMap::new();
        let mut preferences_defaults = None;
        match flatten(DEFAULTS) {
            Ok(map) => values.extend(map.into_iter().map(|(k, v)| (k, (v, false)))),
            Err(e) => errors.push(format!("built-in defaults: {e}")),
        }
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Ok(text) => match flatten(&text) {
                    Ok(map) => {
                        preferences_defaults = preferences_table(&text);
                        for (k, v) in map {
                            match values.get_mut(&k) {
                                Some(slot) => *slot = (v, true),
                                None => errors
                                    .push(format!("{}: unknown setting {k:?}", path.display())),
                            }
                        }
                    }
                    Err(e) => errors.push(format!("{}: {e}", path.display())),
                },
                Err(e) => errors.push(format!("{}: cannot read: {e}", path.display())),
            }
        }
        let mut oauth: BTreeMap<String, BTreeMap<String, SecretString>> = BTreeMap::new();
        for (key, value) in env {
            if let Some((provider, setting)) =
                key.strip_prefix("OAUTH_").and_then(split_provider_setting)
            {
                // Compose and Helm pass an unset `${OAUTH_GOOGLE_CLIENT_ID:-}` as "": empty
                // means not set, so a provider left blank stays unconfigured.
                if value.trim().is_empty() {
                    continue;
                }
                oauth
                    .entry(provider)
                    .or_default()
                    .insert(setting, SecretString::from(value));
                continue;
            }
            let lower = key.to_ascii_lowercase();
            if let Some(slot) = values.get_mut(&lower) {
                *slot = (value, true);
            }
        }
        if errors.is_empty() {
            Ok(Self {
                values,
                oauth,
                preferences_defaults,
            })
        } else {
            Err(ConfigError(errors))
        }
    }

    pub(super) fn is_set_explicitly(&self, key: &str) -> bool {
        self.values.get(key).is_some_and(|(_, explicit)| *explicit)
    }

    pub(super) fn oauth_providers(&self) -> BTreeMap<String, BTreeMap<String, SecretString>> {
        self.oauth.clone()
    }

    /// The `[preferences_defaults]` table of the file, as JSON (an empty object without one).
    pub(super) fn preferences_defaults(&self) -> serde_json::Value {
        self.preferences_defaults
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_else(|| serde_json::json!({}))
    }

    pub(super) fn parser(&self) -> Parser<'_> {
        Parser {
            layers: self,
            errors: Vec::new(),
        }
    }
}

/// `OAUTH_GOOGLE_CLIENT_ID` → (`google`, `client_id`). The general settings
/// `OAUTH_REDIRECT_URI` and `OAUTH_ALLOWED_REDIRECT_URIS` are not provider settings.
fn split_provider_setting(rest: &str) -> Option<(String, String)> {
    const SETTINGS: [&str; 8] = [
        "CLIENT_ID",
        "CLIENT_SECRET",
        "AUTHORIZE_URL",
        "TOKEN_URL",
        "REVOKE_URL",
        "USERINFO_URL",
        "API_BASE_URL",
        "TENANT",
    ];
    SETTINGS.iter().find_map(|s| {
        let provider = rest.strip_suffix(s)?.strip_suffix('_')?;
        (!provider.is_empty()).then(|| (provider.to_ascii_lowercase(), s.to_ascii_lowercase()))
    })
}

/// The one table a configuration file may hold: system defaults of user preferences.
const PREFERENCES_DEFAULTS: &str = "preferences_defaults";

fn preferences_table(text: &str) -> Option<toml::Table> {
    let mut table: toml::Table = text.parse().ok()?;
    match table.remove(PREFERENCES_DEFAULTS)? {
        toml::Value::Table(t) => Some(t),
        _ => None,
    }
}

/// A TOML document of scalar settings → key → string value (arrays joined with commas).
fn flatten(text: &str) -> Result<HashMap<String, String>, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.message().to_owned())?;
    let mut out = HashMap::new();
    for (k, v) in table {
        if k == PREFERENCES_DEFAULTS && v.is_table() {
            continue;
        }
        let s = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => return Err(format!("{k}: must be a string, number, boolean or list")),
        };
        out.insert(k, s);
    }
    Ok(out)
}

/// Typed access to the settings; every failure is recorded under the variable's name.
pub(super) struct Parser<'a> {
    layers: &'a Layers,
    errors: Vec<String>,
}

impl Parser<'_> {
    pub(super) fn fail(&mut self, var: &str, message: String) {
        self.errors.push(format!("{var}: {message}"));
    }

    pub(super) fn into_errors(self) -> Vec<String> {
        self.errors
    }

    pub(super) fn string(&self, key: &str) -> String {
        self.layers
            .values
            .get(key)
            .map(|(v, _)| v.trim().to_owned())
            .unwrap_or_default()
    }

    pub(super) fn optional(&self, key: &str) -> Option<String> {
        Some(self.string(key)).filter(|s| !s.is_empty())
    }

    pub(super) fn list(&self, key: &str) -> Vec<String> {
        self.string(key)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub(super) fn parse<T: FromStr>(&mut self, key: &str, expected: &str) -> Option<T> {
        let raw = self.string(key);
        let parsed = raw.parse().ok();
        if parsed.is_none() {
            self.fail(
                &key.to_ascii_uppercase(),
                format!("{raw:?} is not {expected}"),
            );
        }
        parsed
    }

    pub(super) fn number(&mut self, key: &str, min: u32, max: u32) -> u32 {
        let raw = self.string(key);
        match raw.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.fail(
                    &key.to_ascii_uppercase(),
                    format!("{raw:?} must be a whole number from {min} to {max}"),
                );
                min
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &str) -> bool {
        match self.string(key).to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            other => {
                self.fail(
                    &key.to_ascii_uppercase(),
                    format!("{other:?} must be true or false"),
                );
                false
            }
        }
    }

    pub(super) fn optional_url(&mut self, key: &str) -> Option<url::Url> {
        let raw = self.optional(key)?;
        self.url(key, &raw)
    }

    pub(super) fn url_list(&mut self, key: &str) -> Vec<url::Url> {
        self.list(key)
            .iter()
            .filter_map(|raw| self.url(key, raw))
            .collect()
    }

    fn url(&mut self, key: &str, raw: &str) -> Option<url::Url> {
        match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                self.fail(
                    &key.to_ascii_uppercase(),
                    format!("{raw:?} is not an http(s) URL"),
                );
                None
            }
        }
    }

    pub(super) fn subscribers(&mut self, key: &str) -> Vec<Subscriber> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            url: String,
            secret: String,
        }
        let Some(raw) = self.optional(key) else {
            return Vec::new();
        };
        let var = key.to_ascii_uppercase();
        // The error of serde_json can quote input, and the input holds secrets: say only where.
        let parsed: Vec<Raw> = match serde_json::from_str(&raw) {
            Ok(v) => v,
            Err(e) => {
                self.fail(&var, format!("must be a JSON array of {{\"url\", \"secret\"}} objects (error at line {} column {})", e.line(), e.column()));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, r) in parsed.into_iter().enumerate() {
            let url = self.url(&format!("{var}[{i}].url"), &r.url);
            let Some(url) = url else { continue };
            match Subscriber::new(url, &SecretString::from(r.secret)) {
                Ok(s) => out.push(s),
                Err(why) => self.fail(&format!("{var}[{i}].secret"), why),
            }
        }
        out
    }
}
