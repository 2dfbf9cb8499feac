//! The JSON shapes of the users routes: the User resource (API.md), the update body, the
//! search page and the export document.

use chrono::{DateTime, Utc};
use domain::profile::RawProfileUpdate;
use domain::user::User;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

/// A user (API.md "Users").
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResource {
    /// The service's id.
    pub id: Uuid,
    /// Clerk's id (`user_…`).
    pub clerk_user_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// An https URL.
    pub profile_image_url: Option<String>,
    pub onboarding_completed: bool,
    pub onboarding_step: Option<String>,
    pub onboarding_completed_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set while the user is soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<User> for UserResource {
    fn from(u: User) -> Self {
        Self {
            id: u.id.into(),
            clerk_user_id: u.clerk_user_id,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            profile_image_url: u.profile_image_url,
            onboarding_completed: u.onboarding_completed,
            onboarding_step: u.onboarding_step,
            onboarding_completed_at: u.onboarding_completed_at,
            last_sign_in_at: u.last_sign_in_at,
            created_at: u.created_at,
            updated_at: u.updated_at,
            deleted_at: u.deleted_at,
        }
    }
}

/// `null` is kept apart from an absent field: `Some(None)` clears the field.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A partial update (PUT and PATCH alike). Email and ids belong to Clerk: any field not
/// listed here is refused with 422 naming it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// 1–100 characters after trimming; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub first_name: Option<Option<String>>,
    /// 1–100 characters after trimming; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub last_name: Option<Option<String>>,
    /// An https URL (at most 2048 characters); `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub profile_image_url: Option<Option<String>>,
    /// 1–64 characters of `a-z 0-9 _ -`; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub onboarding_step: Option<Option<String>>,
    /// `true` also records `onboarding_completed_at`.
    #[serde(default)]
    pub onboarding_completed: Option<bool>,
}

impl From<UpdateUser> for RawProfileUpdate {
    fn from(b: UpdateUser) -> Self {
        Self {
            first_name: b.first_name,
            last_name: b.last_name,
            profile_image_url: b.profile_image_url,
            onboarding_step: b.onboarding_step,
            onboarding_completed: b.onboarding_completed,
        }
    }
}

/// Query of the admin search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Matches email, first or last name (case-insensitive substring).
    pub q: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Also list soft-deleted users.
    #[serde(default)]
    pub include_deleted: bool,
}

/// One page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserResource>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The export document: everything held about one user, secrets excluded.
pub fn export_document(e: app::users::UserExport) -> Value {
    let prefs = e.rows.preferences.map(|p| {
        json!({
            "schema_version": p.schema_version,
            "version": p.version,
            "overrides": p.overrides,
            "updated_at": p.updated_at,
        })
    });
    let history: Vec<Value> = e
        .rows
        .preference_history
        .into_iter()
        .map(|h| {
            json!({
                "version": h.version,
                "schema_version": h.schema_version,
                "changes": h.changes,
                "snapshot": h.snapshot,
                "changed_by": h.changed_by,
                "changed_at": h.changed_at,
            })
        })
        .collect();
    let integrations: Vec<Value> = e
        .rows
        .integrations
        .into_iter()
        .map(|i| {
            json!({
                "id": i.id,
                "provider": i.provider,
                "status": i.status,
                "account_id": i.account_id,
                "account_email": i.account_email,
                "scopes": i.scopes,
                "connected_at": i.connected_at,
                "expires_at": i.expires_at,
                "last_refreshed_at": i.last_refreshed_at,
                "last_used_at": i.last_used_at,
                "created_at": i.created_at,
                "updated_at": i.updated_at,
            })
        })
        .collect();
    let audit: Vec<Value> = e
        .audit
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id,
                "occurred_at": a.occurred_at,
                "actor_type": a.actor_type,
                "actor_id": a.actor_id,
                "action": a.action,
                "resource_type": a.resource_type,
                "resource_id": a.resource_id,
                "outcome": a.outcome,
                "ip": a.ip,
                "user_agent": a.user_agent,
                "request_id": a.request_id,
                "details": a.details,
            })
        })
        .collect();
    json!({
        "format": "user-service/export/v1",
        "exported_at": Utc::now(),
        "user": UserResource::from(e.user),
        "preferences": prefs,
        "preference_history": history,
        "integrations": integrations,
        "audit": audit,
    })
}
