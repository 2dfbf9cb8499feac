//! Audit vocabulary (API.md "Audit"): who acted, and what they did.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::UserId;

/// One stored entry of the hash-chained audit log, as the rest of the code sees it. Built
/// by `store` from its row. The text fields are kept as stored: the chain hashes exactly
/// what was written, whichever version of the service wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    /// An [`ActorType`] name.
    pub actor_type: String,
    pub actor_id: Option<String>,
    /// An [`AuditAction`] name.
    pub action: String,
    /// The user the entry is about.
    pub user_id: Option<UserId>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Non-secret facts about the action.
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
    /// SHA-256 over the personal fields, which the chain hash covers so that they can be
    /// pseudonymized later; `None` for an entry from before the digest existed.
    pub pii_digest: Option<String>,
    /// When the personal fields were replaced (purge of the user).
    pub pseudonymized_at: Option<DateTime<Utc>>,
}

/// The kind of actor behind an audited change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorType {
    User,
    Service,
    System,
    Webhook,
}

impl ActorType {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
            Self::System => "system",
            Self::Webhook => "webhook",
        }
    }
}

/// Who acted: a user (their Clerk id), a service (its key name), the system (a job name)
/// or a webhook sender (`clerk`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorType,
    pub id: Option<String>,
}

impl Actor {
    /// A user acting through a session token.
    pub fn user(clerk_user_id: impl Into<String>) -> Self {
        Self {
            kind: ActorType::User,
            id: Some(clerk_user_id.into()),
        }
    }
    /// A service acting with a service key (its id is the key's name).
    pub fn service(key_name: impl Into<String>) -> Self {
        Self {
            kind: ActorType::Service,
            id: Some(key_name.into()),
        }
    }
    /// The service itself (a job, the CLI).
    pub fn system(what: impl Into<String>) -> Self {
        Self {
            kind: ActorType::System,
            id: Some(what.into()),
        }
    }
    /// An incoming webhook from `source` (e.g. `clerk`).
    pub fn webhook(source: impl Into<String>) -> Self {
        Self {
            kind: ActorType::Webhook,
            id: Some(source.into()),
        }
    }
}

/// Every audited action (API.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditAction {
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "user.restored")]
    UserRestored,
    #[serde(rename = "preferences.updated")]
    PreferencesUpdated,
    #[serde(rename = "preferences.reset")]
    PreferencesReset,
    #[serde(rename = "preferences.rolled_back")]
    PreferencesRolledBack,
    #[serde(rename = "preferences.imported")]
    PreferencesImported,
    #[serde(rename = "integration.connected")]
    IntegrationConnected,
    #[serde(rename = "integration.disconnected")]
    IntegrationDisconnected,
    #[serde(rename = "integration.status_changed")]
    IntegrationStatusChanged,
    #[serde(rename = "token.accessed")]
    TokenAccessed,
    #[serde(rename = "token.refreshed")]
    TokenRefreshed,
    /// A service's request was forwarded to the provider's API with the user's token
    /// (the provider proxy); never its body, its query values or the token.
    #[serde(rename = "token.proxied")]
    TokenProxied,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "keys.rotated")]
    KeysRotated,
    #[serde(rename = "service_key.created")]
    ServiceKeyCreated,
    #[serde(rename = "service_key.revoked")]
    ServiceKeyRevoked,
    /// A service key got a new secret; the old one works until the grace period ends.
    #[serde(rename = "service_key.rotated")]
    ServiceKeyRotated,
    /// The purge replaced the personal fields of earlier entries (which, and digests of
    /// their fields before and after): what lets `audit verify` tell it from tampering.
    #[serde(rename = "audit.pseudonymized")]
    AuditPseudonymized,
}

wire_names!(AuditAction {
    UserCreated => "user.created",
    UserUpdated => "user.updated",
    UserDeleted => "user.deleted",
    UserRestored => "user.restored",
    PreferencesUpdated => "preferences.updated",
    PreferencesReset => "preferences.reset",
    PreferencesRolledBack => "preferences.rolled_back",
    PreferencesImported => "preferences.imported",
    IntegrationConnected => "integration.connected",
    IntegrationDisconnected => "integration.disconnected",
    IntegrationStatusChanged => "integration.status_changed",
    TokenAccessed => "token.accessed",
    TokenRefreshed => "token.refreshed",
    TokenProxied => "token.proxied",
    TokenRevoked => "token.revoked",
    KeysRotated => "keys.rotated",
    ServiceKeyCreated => "service_key.created",
    ServiceKeyRevoked => "service_key.revoked",
    ServiceKeyRotated => "service_key.rotated",
    AuditPseudonymized => "audit.pseudonymized",
});
