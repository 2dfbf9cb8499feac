//! What a service key may reach beyond its permissions: the providers it may get tokens
//! for and the scope ceiling of those tokens (docs/security.md "Service-key limits").
//!
//! The rules, checked by the token hand-out before anything is read or refreshed where
//! possible:
//! - a provider outside the key's list is refused;
//! - requested scopes beyond the ceiling are refused;
//! - a request that names no scopes asks for the token as it is, so the scopes the token
//!   carries must all lie within the ceiling; otherwise a key limited to `gmail.send`
//!   could walk away with a token that also reads the calendar. Such a key names the
//!   scopes it needs, and gets the token only when the grant stays within its ceiling.
//!
//! A key with no limits (every key created before limits existed) is unlimited.

use std::sync::Arc;

use domain::{ValidationErrors, text::Scopes};

use crate::AppError;

/// A key's limits; `None` in a field means no limit there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyLimits {
    /// Provider names the key may get tokens for.
    pub providers: Option<Arc<[String]>>,
    /// The scopes a token handed to the key may carry.
    pub scopes: Option<Arc<[String]>>,
}

impl KeyLimits {
    /// No limit at all.
    #[must_use]
    pub fn is_unlimited(&self) -> bool {
        self.providers.is_none() && self.scopes.is_none()
    }

    /// Refuses a request for `provider` with `scopes` outside the limits.
    ///
    /// # Errors
    /// `Forbidden`, saying which limit was hit.
    pub fn check_request(&self, provider: &str, scopes: &[String]) -> Result<(), AppError> {
        if let Some(allowed) = &self.providers
            && !allowed.iter().any(|p| p == provider)
        {
            return Err(AppError::Forbidden(format!(
                "this service key may not get tokens for {provider}"
            )));
        }
        self.within_ceiling(scopes, "requested scopes beyond this service key's ceiling")
    }

    /// Refuses a token whose `granted` scopes exceed the ceiling (for a request that named
    /// no scopes).
    ///
    /// # Errors
    /// `Forbidden`, naming the scopes beyond the ceiling.
    pub fn check_granted(&self, granted: &[String]) -> Result<(), AppError> {
        self.within_ceiling(
            granted,
            "the token carries scopes beyond this service key's ceiling (name the scopes you need)",
        )
    }

    fn within_ceiling(&self, scopes: &[String], what: &str) -> Result<(), AppError> {
        let Some(ceiling) = &self.scopes else {
            return Ok(());
        };
        let beyond: Vec<&str> = scopes
            .iter()
            .filter(|s| !ceiling.contains(s))
            .map(String::as_str)
            .collect();
        if beyond.is_empty() {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!("{what}: {}", beyond.join(" "))))
        }
    }
}

/// Validates the provider list of a new key against the known providers; empty means no
/// limit. Sorted, duplicates removed.
///
/// # Errors
/// A field error on `providers` naming the unknown one.
pub(crate) fn parse_providers<S: AsRef<str>>(
    names: &[S],
    known: impl Fn(&str) -> bool,
) -> Result<Option<Vec<String>>, ValidationErrors> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        let n = n.as_ref().trim();
        if !known(n) {
            return Err(ValidationErrors::single(
                "providers",
                format!("unknown provider {n:?}"),
            ));
        }
        out.push(n.to_owned());
    }
    Ok(normalized(out))
}

/// Validates a scope ceiling; empty means no ceiling. Sorted, duplicates removed.
///
/// # Errors
/// A field error on `scopes` (or `scopes[i]`).
pub(crate) fn parse_scopes<S: AsRef<str>>(
    scopes: &[S],
) -> Result<Option<Vec<String>>, ValidationErrors> {
    let out: Vec<String> = scopes
        .iter()
        .map(|s| s.as_ref().trim().to_owned())
        .collect();
    Scopes::check("scopes", &out)?;
    Ok(normalized(out))
}

fn normalized(mut v: Vec<String>) -> Option<Vec<String>> {
    v.sort();
    v.dedup();
    (!v.is_empty()).then_some(v)
}

/// A stored JSON array of strings (`None`: no limit).
pub(crate) fn from_json(value: Option<&serde_json::Value>) -> Option<Vec<String>> {
    value.and_then(|v| serde_json::from_value(v.clone()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(providers: Option<&[&str]>, scopes: Option<&[&str]>) -> KeyLimits {
        let arc = |v: &[&str]| -> Arc<[String]> { v.iter().map(|s| (*s).to_owned()).collect() };
        KeyLimits {
            providers: providers.map(arc),
            scopes: scopes.map(arc),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn unlimited_allows_everything() {
        let l = KeyLimits::default();
        assert!(l.is_unlimited());
        assert!(l.check_request("google", &strings(&["a", "b"])).is_ok());
        assert!(l.check_granted(&strings(&["a"])).is_ok());
    }

    #[test]
    fn providers_and_ceiling_are_enforced() {
        let l = limits(Some(&["google"]), Some(&["mail.send"]));
        assert!(l.check_request("google", &strings(&["mail.send"])).is_ok());
        assert!(l.check_request("google", &[]).is_ok());
        let e = l.check_request("microsoft", &[]).expect_err("provider");
        assert!(e.to_string().contains("microsoft"), "{e}");
        let e = l
            .check_request("google", &strings(&["mail.send", "calendar"]))
            .expect_err("scope");
        assert!(e.to_string().contains("calendar"), "{e}");
        assert!(l.check_granted(&strings(&["mail.send"])).is_ok());
        assert!(
            l.check_granted(&strings(&["mail.send", "calendar"]))
                .is_err()
        );
        // Providers only: any scope.
        let l = limits(Some(&["google"]), None);
        assert!(l.check_granted(&strings(&["anything"])).is_ok());
    }

    #[test]
    fn parsing_normalizes_and_validates() {
        let known = |p: &str| matches!(p, "google" | "microsoft");
        assert_eq!(
            parse_providers(&["microsoft", "google", "google"], known).expect("valid"),
            Some(strings(&["google", "microsoft"]))
        );
        assert_eq!(parse_providers::<&str>(&[], known).expect("valid"), None);
        assert!(parse_providers(&["github"], known).is_err());
        assert_eq!(
            parse_scopes(&["b", "a", "b"]).expect("valid"),
            Some(strings(&["a", "b"]))
        );
        assert!(parse_scopes(&["has space"]).is_err());
    }
}
