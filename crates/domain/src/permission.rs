//! Service-key permissions (API.md "Authentication").

use serde::{Deserialize, Serialize};

/// A permission a service key can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "tokens:read")]
    TokensRead,
    #[serde(rename = "tokens:refresh")]
    TokensRefresh,
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "preferences:read")]
    PreferencesRead,
    #[serde(rename = "integrations:read")]
    IntegrationsRead,
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Everything, including admin routes.
    #[serde(rename = "admin")]
    Admin,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Self; 7] = [
        Self::TokensRead,
        Self::TokensRefresh,
        Self::UsersRead,
        Self::PreferencesRead,
        Self::IntegrationsRead,
        Self::AuditRead,
        Self::Admin,
    ];

    /// The wire name, e.g. `tokens:read`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TokensRead => "tokens:read",
            Self::TokensRefresh => "tokens:refresh",
            Self::UsersRead => "users:read",
            Self::PreferencesRead => "preferences:read",
            Self::IntegrationsRead => "integrations:read",
            Self::AuditRead => "audit:read",
            Self::Admin => "admin",
        }
    }

    /// Parses a wire name.
    ///
    /// # Errors
    /// When the name is not a known permission.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown permission {s:?}; known: {}",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}
