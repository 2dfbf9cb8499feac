//! Validated newtypes for users: a value of these types is valid by construction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::UserId;

/// A Clerk user id: `user_` followed by 1–64 ASCII letters and digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClerkUserId(String);

impl ClerkUserId {
    /// Validates a Clerk user id.
    ///
    /// # Errors
    /// When the prefix or the characters are wrong.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let rest = s.strip_prefix("user_").ok_or("must start with user_")?;
        if rest.is_empty() || rest.len() > 64 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("must be user_ followed by 1 to 64 letters or digits");
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as sent by Clerk.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClerkUserId {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ClerkUserId> for String {
    fn from(id: ClerkUserId) -> String {
        id.0
    }
}

impl std::fmt::Display for ClerkUserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, trimmed and lower-cased in the domain part. Deliberately permissive
/// (Clerk has already verified it): one `@`, a non-empty local part, a dotted domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Validates an email address.
    ///
    /// # Errors
    /// When it has no single `@`, an empty part, control characters or is over 320 bytes.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        if s.len() > 320 || s.chars().any(char::is_control) || s.contains(char::is_whitespace) {
            return Err("must be a valid email address");
        }
        let (local, domain) = s.split_once('@').ok_or("must be a valid email address")?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err("must be a valid email address");
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// A user as the rest of the code sees it: the stored profile, onboarding state and
/// lifecycle timestamps. Built by `store` from its row; `deleted_at` set means soft-deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The service's id.
    pub id: UserId,
    /// The Clerk id (unique).
    pub clerk_user_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub profile_image_url: Option<String>,
    pub onboarding_completed: bool,
    pub onboarding_step: Option<String>,
    pub onboarding_completed_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// Clerk's `updated_at` of the last applied change (older webhooks are ignored).
    pub clerk_updated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// How a path names a user: the service id, the Clerk id, or `me` (the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserRef {
    Id(UserId),
    Clerk(ClerkUserId),
    Me,
}

impl UserRef {
    /// Parses a `{user_ref}` path segment.
    ///
    /// # Errors
    /// When it is none of a UUID, a Clerk id or `me`.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s == "me" {
            return Ok(Self::Me);
        }
        if s.starts_with("user_") {
            return ClerkUserId::parse(s).map(Self::Clerk);
        }
        Uuid::parse_str(s)
            .map(|u| Self::Id(UserId::from_uuid(u)))
            .map_err(|_| "must be a user id (UUID), a Clerk user id (user_…) or me")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clerk_ids() {
        assert!(ClerkUserId::parse("user_2abcDEF9").is_ok());
        assert!(ClerkUserId::parse("user_").is_err());
        assert!(ClerkUserId::parse("usr_abc").is_err());
        assert!(ClerkUserId::parse("user_a-b").is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").map(String::from),
            Ok("Ada@example.com".into())
        );
        for bad in [
            "", "a", "a@b", "@b.c", "a@@b.c", "a b@c.d", "a@b.c.", "a\n@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_refs() {
        assert_eq!(UserRef::parse("me"), Ok(UserRef::Me));
        assert!(matches!(UserRef::parse("user_abc"), Ok(UserRef::Clerk(_))));
        assert!(matches!(
            UserRef::parse("0193f3a2-7c1e-7000-8000-000000000000"),
            Ok(UserRef::Id(_))
        ));
        assert!(UserRef::parse("../etc").is_err());
    }
}
