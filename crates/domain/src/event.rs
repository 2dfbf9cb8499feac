//! The events this service sends to other services (API.md "Webhooks out"). The wire name
//! of each type is part of the contract: subscribers switch on it.

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    UserCreated,
    /// Profile fields changed (by PUT/PATCH, by Clerk, by a sign-in) or a restore.
    UserUpdated,
    UserDeleted,
    /// Any new version of a user's preferences (update, reset, rollback, import).
    PreferencesUpdated,
    IntegrationConnected,
    IntegrationDisconnected,
    /// Failure and recovery alike (`from`, `to` in the data).
    IntegrationStatusChanged,
}

impl EventType {
    /// Every type.
    pub const ALL: [Self; 7] = [
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::PreferencesUpdated,
        Self::IntegrationConnected,
        Self::IntegrationDisconnected,
        Self::IntegrationStatusChanged,
    ];

    /// The wire and stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::PreferencesUpdated => "preferences.updated",
            Self::IntegrationConnected => "integration.connected",
            Self::IntegrationDisconnected => "integration.disconnected",
            Self::IntegrationStatusChanged => "integration.status_changed",
        }
    }

    /// Parses a stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Where one delivery of an event to one subscriber stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being sent under a claim).
    Pending,
    /// The subscriber answered 2xx.
    Delivered,
    /// Every attempt failed; kept for inspection.
    Failed,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Failed];

    /// The stored and wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored (or requested) name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert!(seen.insert(t.as_str()));
        }
        assert_eq!(EventType::parse("user.restored"), None);
    }

    #[test]
    fn delivery_statuses_round_trip() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(DeliveryStatus::parse("retrying"), None);
    }
}
