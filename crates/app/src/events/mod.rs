//! Events to other services (API.md "Webhooks out"): each change stores its event in its
//! own transaction (the outbox, with one pending delivery per subscriber), and the
//! [`Dispatcher`] sends them, signed the Standard Webhooks way, retrying with backoff.
//!
//! Event data names the user and what changed, never a secret and no more personal data
//! than the ids: a subscriber that needs the profile asks `GET /internal/users/{id}`.

mod delivery;

use std::{sync::Arc, time::Duration};

use chrono::{SubsecRound, Utc};
use domain::{UserId, event::EventType, integration::Integration};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use store::Conn;
use url::Url;

pub use delivery::{DeliveryReport, Dispatcher};
pub use domain::event::DeliveryStatus;
pub use store::events::DeliveryView;

use crate::{App, AppError};

/// One receiver of events: where, and the key its signatures are made with.
#[derive(Clone)]
pub struct Subscriber {
    url: Url,
    signer: Arc<standardwebhooks::Webhook>,
}

impl Subscriber {
    /// A subscriber at `url` with a Standard Webhooks secret (`whsec_` + base64).
    ///
    /// # Errors
    /// When the secret is not of that form (the message never repeats it).
    pub fn new(url: Url, secret: &SecretString) -> Result<Self, String> {
        let raw = secret.expose_secret();
        if !raw.starts_with("whsec_") {
            return Err("must start with whsec_".to_owned());
        }
        let signer = standardwebhooks::Webhook::new(raw)
            .map_err(|_| "must be whsec_ followed by base64".to_owned())?;
        Ok(Self {
            url,
            signer: Arc::new(signer),
        })
    }

    /// Where events are POSTed.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl std::fmt::Debug for Subscriber {
    // The signing key stays out of every log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("url", &self.url.as_str())
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Who receives events and how hard we try.
#[derive(Clone, Debug)]
pub struct EventSettings {
    pub subscribers: Vec<Subscriber>,
    /// Wait after the first failed attempt; doubles per attempt.
    pub retry_base_delay: Duration,
    /// Attempts before a delivery is kept as failed.
    pub max_attempts: u32,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            subscribers: Vec::new(),
            retry_base_delay: Duration::from_millis(5000),
            max_attempts: 8,
        }
    }
}

/// An event about to be stored.
#[derive(Clone, Debug)]
pub struct Event {
    kind: EventType,
    user: UserId,
    data: Value,
}

impl Event {
    /// `user.created`.
    #[must_use]
    pub fn user_created(user: UserId, clerk_user_id: &str) -> Self {
        Self::about_user(EventType::UserCreated, user, clerk_user_id, json!({}))
    }

    /// `user.updated` with the names of the fields that changed.
    #[must_use]
    pub fn user_updated(user: UserId, clerk_user_id: &str, fields: &[&str]) -> Self {
        Self::about_user(
            EventType::UserUpdated,
            user,
            clerk_user_id,
            json!({ "fields": fields }),
        )
    }

    /// `user.deleted`.
    #[must_use]
    pub fn user_deleted(user: UserId, clerk_user_id: &str) -> Self {
        Self::about_user(EventType::UserDeleted, user, clerk_user_id, json!({}))
    }

    /// `preferences.updated`: the new version, the changed paths, and what caused it
    /// (`updated`, `reset`, `rolled_back`, `imported`).
    #[must_use]
    pub fn preferences_updated(
        user: UserId,
        version: i64,
        changed: &[String],
        cause: &str,
    ) -> Self {
        Self {
            kind: EventType::PreferencesUpdated,
            user,
            data: json!({"user_id": user, "version": version, "changed": changed,
                "cause": cause}),
        }
    }

    /// `integration.connected`.
    #[must_use]
    pub fn integration_connected(i: &Integration, scopes: &[String]) -> Self {
        Self::about_integration(
            EventType::IntegrationConnected,
            i,
            json!({"status": "active", "scopes": scopes}),
        )
    }

    /// `integration.disconnected`; `revocation` says what the provider did.
    #[must_use]
    pub fn integration_disconnected(i: &Integration, revocation: &str) -> Self {
        Self::about_integration(
            EventType::IntegrationDisconnected,
            i,
            json!({"status": "disconnected", "revocation": revocation}),
        )
    }

    /// `integration.status_changed` (failure and recovery alike).
    #[must_use]
    pub fn integration_status_changed(
        i: &Integration,
        from: &str,
        to: &str,
        reason: Option<&str>,
    ) -> Self {
        Self::about_integration(
            EventType::IntegrationStatusChanged,
            i,
            json!({"from": from, "to": to, "reason": reason}),
        )
    }

    /// An integration event: user and provider as always, plus which of the user's
    /// accounts with the provider (`integration_id`, `account_id`) it is about.
    fn about_integration(kind: EventType, i: &Integration, extra: Value) -> Self {
        let mut data = json!({"user_id": i.user_id, "provider": i.provider,
            "integration_id": i.id, "account_id": i.account_id});
        if let (Value::Object(d), Value::Object(e)) = (&mut data, extra) {
            d.extend(e);
        }
        Self {
            kind,
            user: i.user_id,
            data,
        }
    }

    fn about_user(kind: EventType, user: UserId, clerk_user_id: &str, extra: Value) -> Self {
        let mut data = json!({"user_id": user, "clerk_user_id": clerk_user_id});
        if let (Value::Object(d), Value::Object(e)) = (&mut data, extra) {
            d.extend(e);
        }
        Self { kind, user, data }
    }

    /// The type.
    #[must_use]
    pub fn kind(&self) -> EventType {
        self.kind
    }
}

impl App {
    /// Stores `event` in `conn` (the caller's transaction), with a pending delivery for
    /// every subscriber: the change, its audit entry and its event commit together.
    ///
    /// # Errors
    /// Storage: the caller's transaction must then roll back.
    pub(crate) async fn emit<C: Conn>(&self, conn: &C, event: Event) -> Result<(), AppError> {
        let subscribers: Vec<String> = self
            .event_settings()
            .subscribers
            .iter()
            .map(|s| s.url.to_string())
            .collect();
        store::events::insert(
            conn,
            store::events::NewEvent {
                id: uuid::Uuid::now_v7(),
                event_type: event.kind.as_str(),
                user_id: Some(event.user.as_uuid()),
                data: crate::audit::scrub(event.data),
                // What Postgres keeps, so every retry signs the same body.
                created_at: Utc::now().trunc_subsecs(6),
            },
            &subscribers,
        )
        .await?;
        Ok(())
    }

    /// Where events go and the retry policy.
    #[must_use]
    pub fn event_settings(&self) -> &EventSettings {
        &self.events
    }

    /// Uses `settings` for events.
    #[must_use]
    pub fn with_event_settings(mut self, settings: EventSettings) -> Self {
        self.events = Arc::new(settings);
        self
    }

    /// Deliveries, newest first (`status`: `pending`, `delivered`, `failed`); `before` is
    /// the last id of the previous page.
    ///
    /// # Errors
    /// `InvalidRequest` for an unknown status; storage.
    pub async fn event_deliveries(
        &self,
        _admin: &crate::access::AsAdmin,
        status: Option<&str>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<DeliveryView>, AppError> {
        let status = match status.map(DeliveryStatus::parse) {
            None => None,
            Some(Some(s)) => Some(s),
            Some(None) => {
                return Err(AppError::InvalidRequest(
                    "status must be pending, delivered or failed".to_owned(),
                ));
            }
        };
        Ok(store::events::deliveries(self.db().reader(), status, before, limit).await?)
    }

    /// Sends a failed delivery again, with a fresh set of attempts (after a subscriber's
    /// outage is fixed).
    ///
    /// # Errors
    /// `NotFound` for an unknown delivery, `Conflict` when it has not failed; storage.
    pub async fn retry_event_delivery(
        &self,
        _admin: &crate::access::AsAdmin,
        id: i64,
    ) -> Result<(), AppError> {
        match store::events::requeue(self.db().writer(), id, Utc::now().trunc_subsecs(6)).await? {
            Some(true) => {
                tracing::info!(delivery = id, "failed event delivery queued again");
                Ok(())
            }
            Some(false) => Err(AppError::Conflict(
                "only a failed delivery can be retried".to_owned(),
            )),
            None => Err(AppError::NotFound("event delivery")),
        }
    }

    /// The events stored about `user` as (type, data), oldest first (tests and support).
    ///
    /// # Errors
    /// Storage.
    pub async fn events_for_user(&self, user: UserId) -> Result<Vec<(String, Value)>, AppError> {
        Ok(store::events::for_user(self.db().writer(), user)
            .await?
            .into_iter()
            .map(|e| (e.event_type, e.payload))
            .collect())
    }
}
