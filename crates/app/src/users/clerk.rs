//! Clerk webhook events (already signature-verified by the caller): each `svix-id` is
//! processed once, recorded in the same transaction as the change it causes.

use chrono::{DateTime, Utc};
use domain::{
    UserId, ValidationErrors,
    audit::{Actor, AuditAction},
    profile::{HttpsUrl, PersonName},
    text::{CONTROL_MESSAGE, MAX_BODY_STRING_CHARS, Text},
    user::{ClerkUserId, Email},
};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{
    StoreError, Tx,
    users::{self, Deleted, User},
    webhook_events,
};

use crate::{
    App, AppError, Ctx, RequestMeta,
    audit::{AuditRecord, record},
    events,
    users::{cascade_deletion, cascade_details, now},
};

/// A Clerk event envelope.
#[derive(Clone, Debug, Deserialize)]
pub struct ClerkEvent {
    /// E.g. `user.created`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The object the event is about.
    #[serde(default)]
    pub data: Value,
}

/// What became of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Handled now (a stale event counts: it was looked at and rightly changed nothing).
    Processed,
    /// This `svix-id` was handled before; nothing changed.
    Duplicate,
    /// A type this service does not act on.
    Ignored,
}

impl WebhookOutcome {
    /// The wire word.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
        }
    }
}

/// Every text of an event that the service reads passes the edge rule (no control
/// characters, bounded); the rest of `data` is never stored and never read.
type Clean = Text<MAX_BODY_STRING_CHARS>;

/// A Clerk user object, as in `user.created` webhooks and the Backend API's
/// `GET /v1/users/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ClerkUser {
    id: Clean,
    #[serde(default)]
    email_addresses: Vec<ClerkEmail>,
    primary_email_address_id: Option<Clean>,
    first_name: Option<Clean>,
    last_name: Option<Clean>,
    image_url: Option<Clean>,
    profile_image_url: Option<Clean>,
    /// Milliseconds since the epoch.
    updated_at: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct ClerkEmail {
    id: Clean,
    email_address: Clean,
}

/// What this service keeps of a Clerk user: values that fail validation are dropped (Clerk
/// owns them; a bad one must not block the account).
pub(crate) struct ClerkProfile {
    pub(crate) clerk: ClerkUserId,
    pub(crate) email: Option<String>,
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) image: Option<String>,
    pub(crate) clerk_updated_at: Option<DateTime<Utc>>,
}

impl ClerkUser {
    pub(crate) fn profile(self) -> Result<ClerkProfile, AppError> {
        let email = self
            .primary_email_address_id
            .as_ref()
            .and_then(|pid| self.email_addresses.iter().find(|e| e.id == *pid))
            .and_then(|e| Email::parse(e.email_address.as_str()).ok())
            .map(String::from);
        let name = |n: Option<Clean>| {
            n.and_then(|n| PersonName::parse(n.as_str()).ok())
                .map(|n| n.as_str().to_owned())
        };
        Ok(ClerkProfile {
            clerk: clerk_id(self.id.as_str())?,
            email,
            first_name: name(self.first_name),
            last_name: name(self.last_name),
            image: self
                .image_url
                .or(self.profile_image_url)
                .and_then(|u| HttpsUrl::parse(u.as_str()).ok())
                .map(|u| u.as_str().to_owned()),
            clerk_updated_at: millis(self.updated_at),
        })
    }
}

/// Creates the user `p` describes with default preferences, its `user.created` audit entry
/// (with `details`) and event, in `txn`: the one way a Clerk user comes into being, whether
/// by webhook, by the sign-up race's Backend API fetch or by `dev user create`.
///
/// # Errors
/// Storage failures; a Clerk id already taken is a unique violation.
pub(crate) async fn create_user(
    app: &App,
    txn: &Tx,
    ctx: &Ctx,
    p: ClerkProfile,
    at: DateTime<Utc>,
    details: Value,
) -> Result<User, AppError> {
    let id = UserId::new();
    let user = User {
        id,
        clerk_user_id: p.clerk.as_str().to_owned(),
        email: p.email,
        first_name: p.first_name,
        last_name: p.last_name,
        profile_image_url: p.image,
        onboarding_completed: false,
        onboarding_step: None,
        onboarding_completed_at: None,
        last_sign_in_at: None,
        clerk_updated_at: p.clerk_updated_at,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    };
    let user = users::insert(txn, user).await?;
    record(
        txn,
        ctx,
        AuditRecord::new(AuditAction::UserCreated, Some(id))
            .resource("user", id.to_string())
            .details(details),
    )
    .await?;
    app.emit(txn, events::Event::user_created(id, p.clerk.as_str()))
        .await?;
    Ok(user)
}

#[derive(Debug, Deserialize)]
struct ClerkDeleted {
    id: Option<Clean>,
}

#[derive(Debug, Deserialize)]
struct ClerkSession {
    user_id: Clean,
    created_at: Option<i64>,
}

enum Event {
    Upsert(ClerkUser),
    Delete(ClerkDeleted),
    SignIn(ClerkSession),
}

fn parse<T: serde::de::DeserializeOwned>(kind: &str, data: Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(data).map_err(|e| {
        let message = e.inner().to_string();
        // Our own text rule names the field (422); serde's other messages may quote values
        // (personal data): say only what was wrong in general.
        if message == CONTROL_MESSAGE || message.starts_with("must be at most") {
            let field = match e.path().to_string().as_str() {
                "." => "data".to_owned(),
                p => format!("data.{p}"),
            };
            ValidationErrors::single(field, message).into()
        } else {
            AppError::InvalidRequest(format!("the data of this {kind} event is not valid"))
        }
    })
}

fn clerk_id(s: &str) -> Result<ClerkUserId, AppError> {
    ClerkUserId::parse(s).map_err(|m| AppError::InvalidRequest(format!("the event's user id {m}")))
}

fn millis(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

impl App {
    /// Processes a verified Clerk event delivered as `svix_id`, with the delivering
    /// request's `meta`.
    ///
    /// # Errors
    /// `InvalidRequest` for a malformed event of a handled type; storage failures (the
    /// sender should retry: nothing was recorded).
    #[tracing::instrument(name = "app clerk.clerk_webhook", skip_all)]
    pub async fn clerk_webhook(
        &self,
        meta: RequestMeta,
        svix_id: &str,
        event: ClerkEvent,
    ) -> Result<WebhookOutcome, AppError> {
        // The caller verified the Svix signature: the actor is Clerk's webhook.
        let ctx = &Ctx::new(Actor::webhook("clerk"), meta);
        let kind = event.kind.clone();
        let result = self.clerk_webhook_inner(ctx, svix_id, event).await;
        let outcome = match &result {
            Ok(o) => o.as_str(),
            Err(AppError::InvalidRequest(_)) => "invalid",
            Err(_) => "error",
        };
        crate::metrics::clerk_webhook(&kind, outcome);
        if kind == "session.created" && matches!(result, Ok(WebhookOutcome::Processed)) {
            crate::metrics::sign_in();
        }
        result
    }

    async fn clerk_webhook_inner(
        &self,
        ctx: &Ctx,
        svix_id: &str,
        event: ClerkEvent,
    ) -> Result<WebhookOutcome, AppError> {
        let kind = event.kind.as_str();
        let parsed = match kind {
            "user.created" | "user.updated" => Event::Upsert(parse(kind, event.data)?),
            "user.deleted" => Event::Delete(parse(kind, event.data)?),
            "session.created" => Event::SignIn(parse(kind, event.data)?),
            _ => return Ok(WebhookOutcome::Ignored),
        };
        // A deletion revokes the user's grants at the providers first: network calls stay
        // outside the transaction, and a redelivery finds no token left to revoke.
        let revocations = match &parsed {
            Event::Delete(ClerkDeleted { id: Some(raw) })
                if !webhook_events::exists(self.db().current(), svix_id).await? =>
            {
                let key = crate::users::UserKey::Clerk(clerk_id(raw.as_str())?);
                match self.find_user(&key, store::users::Deleted::Exclude).await? {
                    Some(u) => self.revoke_all_grants(u.id).await?,
                    None => Value::Null,
                }
            }
            _ => Value::Null,
        };
        let txn = self.db().begin().await?;
        if webhook_events::exists(&txn, svix_id).await? {
            return Ok(WebhookOutcome::Duplicate);
        }
        let step = Step {
            app: self,
            txn: &txn,
            ctx,
            svix_id,
            kind,
            at: now(),
            revocations,
        };
        let outcome = match parsed {
            Event::Upsert(u) => step.upsert(u).await?,
            Event::Delete(d) => step.delete(d).await?,
            Event::SignIn(s) => step.sign_in(s).await?,
        };
        match webhook_events::insert(&txn, svix_id, "clerk", kind, outcome, step.at).await {
            // A concurrent delivery of the same id won: this one rolls back.
            Err(e) if e.is_unique_violation() => return Ok(WebhookOutcome::Duplicate),
            other => other?,
        }
        txn.commit().await?;
        Ok(WebhookOutcome::Processed)
    }
}

/// One event's work inside its transaction.
struct Step<'a> {
    app: &'a App,
    txn: &'a Tx,
    ctx: &'a Ctx,
    svix_id: &'a str,
    kind: &'a str,
    at: DateTime<Utc>,
    /// What a deletion's revocations did at the providers, by provider.
    revocations: Value,
}

impl Step<'_> {
    /// The audit details of this event's entries, with `extra` merged in.
    fn details(&self, extra: Value) -> Value {
        let mut details =
            json!({ "source": "clerk", "event_type": self.kind, "webhook_id": self.svix_id });
        if let (Value::Object(d), Value::Object(e)) = (&mut details, extra) {
            d.extend(e);
        }
        details
    }

    async fn audit(&self, action: AuditAction, id: UserId, extra: Value) -> Result<(), AppError> {
        record(
            self.txn,
            self.ctx,
            AuditRecord::new(action, Some(id))
                .resource("user", id.to_string())
                .details(self.details(extra)),
        )
        .await?;
        Ok(())
    }

    async fn emit(&self, event: events::Event) -> Result<(), AppError> {
        self.app.emit(self.txn, event).await
    }

    async fn find(&self, clerk: &ClerkUserId) -> Result<Option<User>, StoreError> {
        users::find_by_clerk_id(self.txn, clerk.as_str(), Deleted::Include).await
    }

    /// `user.created` and `user.updated`: create when missing, else update unless stale.
    async fn upsert(&self, c: ClerkUser) -> Result<&'static str, AppError> {
        let p = c.profile()?;
        let Some(mut u) = self.find(&p.clerk).await? else {
            let details = self.details(json!({}));
            create_user(self.app, self.txn, self.ctx, p, self.at, details).await?;
            return Ok("created");
        };
        let ClerkProfile {
            clerk,
            email,
            first_name,
            last_name,
            image,
            clerk_updated_at,
        } = p;
        if u.deleted_at.is_some() {
            // Deleted here: Clerk's later edits must not bring data back.
            return Ok("skipped_deleted");
        }
        if let (Some(stored), Some(incoming)) = (u.clerk_updated_at, clerk_updated_at)
            && incoming < stored
        {
            return Ok("stale");
        }
        let mut fields = Vec::new();
        if email.is_some() && u.email != email {
            u.email = email;
            fields.push("email");
        }
        for (f, slot, v) in [
            ("first_name", &mut u.first_name, first_name),
            ("last_name", &mut u.last_name, last_name),
            ("profile_image_url", &mut u.profile_image_url, image),
        ] {
            if *slot != v {
                *slot = v;
                fields.push(f);
            }
        }
        if clerk_updated_at.is_some() {
            u.clerk_updated_at = clerk_updated_at;
        }
        if fields.is_empty() {
            // Still remember Clerk's version, so older events stay stale.
            users::update(self.txn, u).await?;
            return Ok("unchanged");
        }
        u.updated_at = self.at;
        let id = u.id;
        users::update(self.txn, u).await?;
        self.audit(AuditAction::UserUpdated, id, json!({ "fields": fields }))
            .await?;
        self.emit(events::Event::user_updated(id, clerk.as_str(), &fields))
            .await?;
        Ok("updated")
    }

    /// `user.deleted`: soft delete and cascade.
    async fn delete(&self, d: ClerkDeleted) -> Result<&'static str, AppError> {
        let Some(raw) = d.id else {
            return Ok("no_user");
        };
        let clerk = clerk_id(raw.as_str())?;
        let Some(u) = self.find(&clerk).await?.filter(|u| u.deleted_at.is_none()) else {
            return Ok("no_user");
        };
        let id = u.id;
        if !users::soft_delete(self.txn, u.id, self.at).await? {
            return Ok("no_user");
        }
        let cascade = cascade_deletion(self.txn, id, self.at).await?;
        let mut details = cascade_details(&cascade);
        details["revocations"] = self.revocations.clone();
        self.audit(AuditAction::UserDeleted, id, details).await?;
        self.emit(events::Event::user_deleted(id, clerk.as_str()))
            .await?;
        Ok("deleted")
    }

    /// `session.created`: the user's latest sign-in.
    async fn sign_in(&self, s: ClerkSession) -> Result<&'static str, AppError> {
        let clerk = clerk_id(s.user_id.as_str())?;
        let Some(mut u) = self.find(&clerk).await?.filter(|u| u.deleted_at.is_none()) else {
            return Ok("no_user");
        };
        let at = millis(s.created_at).unwrap_or(self.at);
        if u.last_sign_in_at.is_some_and(|prev| prev >= at) {
            return Ok("unchanged");
        }
        u.last_sign_in_at = Some(at);
        u.updated_at = self.at;
        let id = u.id;
        users::update(self.txn, u).await?;
        self.audit(
            AuditAction::UserUpdated,
            id,
            json!({ "fields": ["last_sign_in_at"] }),
        )
        .await?;
        self.emit(events::Event::user_updated(
            id,
            clerk.as_str(),
            &["last_sign_in_at"],
        ))
        .await?;
        Ok("signed_in")
    }
}
