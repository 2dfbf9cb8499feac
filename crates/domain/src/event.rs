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

wire_names!(EventType {
    UserCreated => "user.created",
    UserUpdated => "user.updated",
    UserDeleted => "user.deleted",
    PreferencesUpdated => "preferences.updated",
    IntegrationConnected => "integration.connected",
    IntegrationDisconnected => "integration.disconnected",
    IntegrationStatusChanged => "integration.status_changed",
});

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

wire_names!(DeliveryStatus {
    Pending => "pending",
    Delivered => "delivered",
    Failed => "failed",
});

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
