//! The integration status machine (API.md "Integrations").
//!
//! `pending` → `active` on a completed connection; `active` ⇄ `refresh_failed` on transient
//! refresh trouble and recovery; any connected state → `reauth_required` when the provider
//! rejects the refresh token (terminal until the user reconnects); any → `disconnected`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{IntegrationId, UserId};

/// A user's connection to one provider as the rest of the code sees it (no token: those
/// stay sealed in storage). Built by `store` from its row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integration {
    pub id: IntegrationId,
    pub user_id: UserId,
    pub provider: String,
    pub status: IntegrationStatus,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    /// The granted scopes, a JSON array of strings.
    pub scopes: serde_json::Value,
    pub connected_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub last_refresh_attempt_at: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub refresh_failures: i32,
    pub refresh_lease_until: Option<DateTime<Utc>>,
    pub refresh_not_before: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether this is the user's default account with its provider (see [`Account`]).
    /// Set by the reads that look at all of the user's accounts with the provider
    /// (`store::integrations::find` and `list`); `false` from a read of one row alone.
    pub default: bool,
}

/// Which of a user's accounts with a provider a request addresses (API.md "Several
/// accounts per provider").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Account {
    /// The default account: the first connected, i.e. the oldest row (by `created_at`,
    /// then id) that is not `disconnected`. Adding an account never moves it; when it is
    /// disconnected the next-oldest becomes the default.
    #[default]
    Default,
    /// The provider's account id, as in the integration resource (`account_id`).
    Named(String),
    /// One integration row: the sweep, the health check, and the re-reads of a refresh
    /// that has found its row already.
    Row(IntegrationId),
}

impl Account {
    /// `Named` when the caller gave an account id, else `Default`.
    #[must_use]
    pub fn from_option(account_id: Option<String>) -> Self {
        account_id.map_or(Self::Default, Self::Named)
    }
}

/// Where a user's connection to a provider stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    /// Authorization started, not completed.
    Pending,
    /// Tokens stored and usable.
    Active,
    /// Transient trouble refreshing; retried with backoff.
    RefreshFailed,
    /// The refresh token was rejected or revoked: the user must reconnect.
    ReauthRequired,
    /// Disconnected by the user (or their deletion); no tokens are kept.
    Disconnected,
}

impl IntegrationStatus {
    /// Whether tokens are held (a token can be handed out or refreshed).
    #[must_use]
    pub const fn holds_tokens(self) -> bool {
        matches!(self, Self::Active | Self::RefreshFailed)
    }
}

wire_names!(IntegrationStatus {
    Pending => "pending",
    Active => "active",
    RefreshFailed => "refresh_failed",
    ReauthRequired => "reauth_required",
    Disconnected => "disconnected",
});

#[cfg(test)]
mod tests {
    use super::IntegrationStatus;

    #[test]
    fn names_round_trip() {
        for s in IntegrationStatus::ALL {
            assert_eq!(IntegrationStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(IntegrationStatus::parse("revoked"), None);
    }
}
