//! Users: lookups, writes, soft delete and restore, the admin search, the credential
//! cascade of a deletion, and the rows an export gathers.

use chrono::{DateTime, Utc};
use domain::integration::IntegrationStatus;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{Set, Unchanged},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QueryResult,
    QuerySelect, Statement, Value,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use uuid::Uuid;

use crate::{
    StoreError,
    entities::{
        integration_tokens, integrations, oauth_states, preference_history, preference_overrides,
        users,
    },
    status::col,
    unique::unique,
};

use domain::UserId;
pub use domain::user::User;

/// The one place a user row becomes the domain record.
impl From<users::Model> for User {
    fn from(r: users::Model) -> Self {
        Self {
            id: UserId::from_uuid(r.id),
            clerk_user_id: r.clerk_user_id,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            profile_image_url: r.profile_image_url,
            onboarding_completed: r.onboarding_completed,
            onboarding_step: r.onboarding_step,
            onboarding_completed_at: r.onboarding_completed_at,
            last_sign_in_at: r.last_sign_in_at,
            clerk_updated_at: r.clerk_updated_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
        }
    }
}

/// Whether lookups see soft-deleted users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// Only live users.
    Exclude,
    /// Live and soft-deleted users.
    Include,
}

fn live_filter<Q: QueryFilter>(q: Q, deleted: Deleted) -> Q {
    match deleted {
        Deleted::Exclude => q.filter(users::Column::DeletedAt.is_null()),
        Deleted::Include => q,
    }
}

/// The user with this service id.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db users.find_by_id", skip_all)]
pub async fn find_by_id<C: ConnectionTrait>(
    conn: &C,
    id: UserId,
    deleted: Deleted,
) -> Result<Option<User>, StoreError> {
    let row = unique(
        live_filter(users::Entity::find_by_id(id.as_uuid()), deleted),
        conn,
    )
    .await?;
    Ok(row.map(User::from))
}

/// The user with a Clerk id: every column of `users`, in the order [`user_at`] reads them.
macro_rules! select_by_clerk_id {
    () => {
        "SELECT id, clerk_user_id, email, first_name, last_name, profile_image_url, \
         onboarding_completed, onboarding_step, onboarding_completed_at, last_sign_in_at, \
         clerk_updated_at, created_at, updated_at, deleted_at FROM users WHERE clerk_user_id = $1"
    };
}
const BY_CLERK_ID: &str = select_by_clerk_id!();
const BY_CLERK_ID_LIVE: &str = concat!(select_by_clerk_id!(), " AND deleted_at IS NULL");

/// The user with this Clerk id.
///
/// Every session request runs this (`App::session_user`), so the statement is written out
/// and the row read by position, as `token_lookup` does: sea-query built it anew per
/// request and the row was decoded by column name, about a tenth of `GET /users/me`'s CPU.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db users.find_by_clerk_id", skip_all)]
pub async fn find_by_clerk_id<C: ConnectionTrait>(
    conn: &C,
    clerk_user_id: &str,
    deleted: Deleted,
) -> Result<Option<User>, StoreError> {
    let sql = match deleted {
        Deleted::Include => BY_CLERK_ID,
        Deleted::Exclude => BY_CLERK_ID_LIVE,
    };
    let stmt = Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        [Value::from(clerk_user_id)],
    );
    match conn.query_one_raw(stmt).await? {
        Some(row) => Ok(Some(user_at(&row)?.into())),
        None => Ok(None),
    }
}

/// The user in a row of [`select_by_clerk_id`].
fn user_at(row: &QueryResult) -> Result<users::Model, StoreError> {
    Ok(users::Model {
        id: row.try_get_by_index(0)?,
        clerk_user_id: row.try_get_by_index(1)?,
        email: row.try_get_by_index(2)?,
        first_name: row.try_get_by_index(3)?,
        last_name: row.try_get_by_index(4)?,
        profile_image_url: row.try_get_by_index(5)?,
        onboarding_completed: row.try_get_by_index(6)?,
        onboarding_step: row.try_get_by_index(7)?,
        onboarding_completed_at: row.try_get_by_index(8)?,
        last_sign_in_at: row.try_get_by_index(9)?,
        clerk_updated_at: row.try_get_by_index(10)?,
        created_at: row.try_get_by_index(11)?,
        updated_at: row.try_get_by_index(12)?,
        deleted_at: row.try_get_by_index(13)?,
    })
}

/// Inserts a user exactly as given (the caller sets id and timestamps).
///
/// # Errors
/// When the database fails; a taken Clerk id is a unique violation.
#[tracing::instrument(name = "db users.insert", skip_all)]
pub async fn insert<C: ConnectionTrait>(conn: &C, u: User) -> Result<User, StoreError> {
    Ok(active_model(u, Write::Insert).insert(conn).await?.into())
}

/// Writes every mutable field of `u` (looked up by its id; id, Clerk id and `created_at`
/// never change).
///
/// # Errors
/// When the database fails or the user does not exist.
#[tracing::instrument(name = "db users.update", skip_all)]
pub async fn update<C: ConnectionTrait>(conn: &C, u: User) -> Result<User, StoreError> {
    Ok(active_model(u, Write::Update).update(conn).await?.into())
}

/// Which write an active model is for.
#[derive(Clone, Copy)]
enum Write {
    Insert,
    Update,
}

/// The one place a user record becomes a row to write. The fields fixed at creation (id,
/// Clerk id, `created_at`) are set by an insert and left unchanged by an update.
fn active_model(u: User, write: Write) -> users::ActiveModel {
    fn fixed<V: Into<sea_orm::Value>>(write: Write, v: V) -> sea_orm::ActiveValue<V> {
        match write {
            Write::Insert => Set(v),
            Write::Update => Unchanged(v),
        }
    }
    users::ActiveModel {
        id: fixed(write, u.id.into()),
        clerk_user_id: fixed(write, u.clerk_user_id),
        email: Set(u.email),
        first_name: Set(u.first_name),
        last_name: Set(u.last_name),
        profile_image_url: Set(u.profile_image_url),
        onboarding_completed: Set(u.onboarding_completed),
        onboarding_step: Set(u.onboarding_step),
        onboarding_completed_at: Set(u.onboarding_completed_at),
        last_sign_in_at: Set(u.last_sign_in_at),
        clerk_updated_at: Set(u.clerk_updated_at),
        created_at: fixed(write, u.created_at),
        updated_at: Set(u.updated_at),
        deleted_at: Set(u.deleted_at),
    }
}

/// Marks a live user deleted at `at`. Returns false when no live user has this id.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db users.soft_delete", skip_all)]
pub async fn soft_delete<C: ConnectionTrait>(
    conn: &C,
    id: UserId,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = users::Entity::update_many()
        .col_expr(users::Column::DeletedAt, Expr::value(at))
        .col_expr(users::Column::UpdatedAt, Expr::value(at))
        .filter(users::Column::Id.eq(id.as_uuid()))
        .filter(users::Column::DeletedAt.is_null())
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Locks a live user's row (shared, until the transaction ends) and says whether the user
/// is live. A write that follows a provider call takes it first: a deletion committed in
/// the meantime makes it `false`, and a deletion that comes later waits for the write and
/// then removes what it wrote. (SQLite has no row locks; its single writer connection
/// serializes the transactions instead.)
///
/// # Errors
/// When the database fails.
pub async fn lock_live<C: ConnectionTrait>(conn: &C, id: UserId) -> Result<bool, StoreError> {
    let row: Option<Uuid> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Id.eq(id.as_uuid()))
        .filter(users::Column::DeletedAt.is_null())
        .lock_shared()
        .into_tuple()
        .one(conn)
        .await?;
    Ok(row.is_some())
}

/// Clears the deletion mark of a soft-deleted user. Returns false when it was not deleted.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db users.restore", skip_all)]
pub async fn restore<C: ConnectionTrait>(
    conn: &C,
    id: UserId,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = users::Entity::update_many()
        .col_expr(
            users::Column::DeletedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(users::Column::UpdatedAt, Expr::value(at))
        .filter(users::Column::Id.eq(id.as_uuid()))
        .filter(users::Column::DeletedAt.is_not_null())
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// What a deletion removed or changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CredentialCascade {
    /// Encrypted token rows deleted.
    pub tokens_deleted: u64,
    /// Pending OAuth states deleted.
    pub states_deleted: u64,
    /// Integrations newly marked `disconnected`.
    pub integrations_disconnected: u64,
}

/// Deletes the user's stored provider tokens and pending OAuth states and marks their
/// integrations `disconnected`.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db users.delete_credentials", skip_all)]
pub async fn delete_credentials<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
    at: DateTime<Utc>,
) -> Result<CredentialCascade, StoreError> {
    let user_id = user_id.as_uuid();
    let tokens = integration_tokens::Entity::delete_many()
        .filter(integration_tokens::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    let states = oauth_states::Entity::delete_many()
        .filter(oauth_states::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    let integ = integrations::Entity::update_many()
        .col_expr(
            integrations::Column::Status,
            Expr::value(col(IntegrationStatus::Disconnected)),
        )
        .col_expr(integrations::Column::UpdatedAt, Expr::value(at))
        .filter(integrations::Column::UserId.eq(user_id))
        .filter(integrations::Column::Status.ne(col(IntegrationStatus::Disconnected)))
        .exec(conn)
        .await?;
    Ok(CredentialCascade {
        tokens_deleted: tokens.rows_affected,
        states_deleted: states.rows_affected,
        integrations_disconnected: integ.rows_affected,
    })
}

/// Where a search page starts: strictly after this (created_at, id), newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchCursor {
    pub created_at: DateTime<Utc>,
    pub id: UserId,
}

/// Admin search: `q` matches email, first or last name case-insensitively (as a substring;
/// `%` and `_` in `q` match themselves), newest first by (created_at, id), at most `limit`.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db users.search", skip_all)]
pub async fn search<C: ConnectionTrait>(
    conn: &C,
    q: Option<&str>,
    deleted: Deleted,
    after: Option<SearchCursor>,
    limit: u64,
) -> Result<Vec<User>, StoreError> {
    let mut query = live_filter(users::Entity::find(), deleted);
    if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = format!("%{}%", escape_like(&q.to_lowercase()));
        // SQLite's lower() folds ASCII only: `Łukasz` stays `Łukasz` there while Rust's
        // lowercase pattern is `łukasz`. The value as typed is matched as well, so a name
        // in any script is found at least in its own spelling on both engines.
        let as_typed = format!("%{}%", escape_like(q));
        let mut any = Condition::any();
        for col in [
            users::Column::Email,
            users::Column::FirstName,
            users::Column::LastName,
        ] {
            any = any
                .add(
                    Expr::expr(Func::lower(Expr::col((users::Entity, col))))
                        .like(LikeExpr::new(pattern.clone()).escape('\\')),
                )
                .add(
                    Expr::col((users::Entity, col))
                        .like(LikeExpr::new(as_typed.clone()).escape('\\')),
                );
        }
        query = query.filter(any);
    }
    if let Some(c) = after {
        query = query.filter(
            Condition::any()
                .add(users::Column::CreatedAt.lt(c.created_at))
                .add(
                    Condition::all()
                        .add(users::Column::CreatedAt.eq(c.created_at))
                        .add(users::Column::Id.lt(c.id.as_uuid())),
                ),
        );
    }
    Ok(query
        .order_by_desc(users::Column::CreatedAt)
        .order_by_desc(users::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(User::from)
        .collect())
}

/// Escapes the LIKE wildcards (and the escape character itself) with `\`.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The stored rows an export gathers besides the user and the audit log.
#[derive(Clone, Debug, Default)]
pub struct ExportRows {
    /// The preference overrides (none: the defaults apply).
    pub preferences: Option<preference_overrides::Model>,
    /// Every preference change, oldest first.
    pub preference_history: Vec<preference_history::Model>,
    /// Every integration (the token rows are not read: secrets stay out of exports).
    pub integrations: Vec<crate::integrations::Integration>,
}

/// Reads the rows of `user_id` that an export contains.
///
/// # Errors
/// When the database fails.
#[tracing::instrument(name = "db users.export_rows", skip_all)]
pub async fn export_rows<C: ConnectionTrait>(
    conn: &C,
    user_id: UserId,
) -> Result<ExportRows, StoreError> {
    let user_id = user_id.as_uuid();
    Ok(ExportRows {
        preferences: preference_overrides::Entity::find_by_id(user_id)
            .one(conn)
            .await?,
        preference_history: preference_history::Entity::find()
            .filter(preference_history::Column::UserId.eq(user_id))
            .order_by_asc(preference_history::Column::Id)
            .all(conn)
            .await?,
        integrations: crate::integrations::records(
            integrations::Entity::find()
                .filter(integrations::Column::UserId.eq(user_id))
                .order_by_asc(integrations::Column::Provider)
                .all(conn)
                .await?,
        )?,
    })
}

/// Users soft-deleted before `cutoff` (the purge job's input), oldest deletion first.
///
/// # Errors
/// When the database fails.
pub async fn deleted_before<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<User>, StoreError> {
    Ok(users::Entity::find()
        .filter(users::Column::DeletedAt.lt(cutoff))
        .order_by_asc(users::Column::DeletedAt)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(User::from)
        .collect())
}

/// Deletes a soft-deleted user's row for good, with everything hanging off it
/// (preferences, history, integrations, tokens, OAuth states: foreign keys cascade, and
/// ciphertexts are deleted explicitly first so the count is reported). Returns the number
/// of ciphertexts deleted, or `None` when the user is not (or no longer) soft-deleted.
///
/// # Errors
/// When the database fails.
pub async fn hard_delete<C: ConnectionTrait>(
    conn: &C,
    id: UserId,
) -> Result<Option<u64>, StoreError> {
    let cascade = delete_credentials(conn, id, Utc::now()).await?;
    let res = users::Entity::delete_many()
        .filter(users::Column::Id.eq(id.as_uuid()))
        .filter(users::Column::DeletedAt.is_not_null())
        .exec(conn)
        .await?;
    Ok((res.rows_affected == 1).then_some(cascade.tokens_deleted + cascade.states_deleted))
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(super::escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
