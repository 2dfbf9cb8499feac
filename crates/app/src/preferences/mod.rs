//! Preferences use cases (API.md "Preferences"): read the effective document, change it by
//! PUT, merge patch, reset, rollback or import, read its history, export it.
//!
//! Every change runs in one transaction: lock the user's row, check `If-Match`, compute the
//! new overrides, write the next version with its history row, append the audit entry.
//! A change that changes nothing writes nothing and answers the current document.

use chrono::{DateTime, Utc};
use domain::{
    UserId,
    audit::AuditAction,
    preferences::{
        self, CURRENT_SCHEMA_VERSION, Category, Overrides, Preferences, PreferencesDocument,
        PreferencesExport, changed_paths,
    },
};
use serde::Serialize;
use serde_json::{Value, json};
use store::preferences::{self as repo, NewVersion, StoredPreferences, WriteOutcome};

use crate::{
    App, AppError, Ctx,
    access::{AsOwner, AsService, PreferencesRead},
    audit::{self, AuditRecord},
};

/// How often a change without `If-Match` is retried when a concurrent first write wins
/// (the only race the row lock cannot cover: there is no row to lock yet).
const ATTEMPTS: usize = 3;

/// One version in the history (`GET …/preferences/history`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryItem {
    pub version: i64,
    pub schema_version: i32,
    pub changed_at: DateTime<Utc>,
    pub changed_by: String,
    /// The merge patch that made this version.
    pub changes: Value,
}

/// A page of history, newest first; `next_cursor` is `null` on the last page.
pub type HistoryPage = crate::page::Page<HistoryItem>;

/// `GET /preferences/schema`: the JSON Schema and the system defaults.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PreferencesSchema {
    pub schema: Value,
    pub defaults: Preferences,
}

/// What a change does to the current overrides. Each kind is audited as one action, so
/// the use cases name only the change and the action cannot drift from it.
enum Change {
    Put(Value),
    Patch(Value),
    Reset(Option<Category>),
    /// The overrides of an earlier version, restored.
    Rollback(Overrides),
    /// The overrides of an imported document.
    Import(Overrides),
}

impl Change {
    const fn action(&self) -> AuditAction {
        match self {
            Self::Put(_) | Self::Patch(_) => AuditAction::PreferencesUpdated,
            Self::Reset(_) => AuditAction::PreferencesReset,
            Self::Rollback(_) => AuditAction::PreferencesRolledBack,
            Self::Import(_) => AuditAction::PreferencesImported,
        }
    }

    /// The `cause` of the `preferences.updated` event.
    const fn cause(&self) -> &'static str {
        match self {
            Self::Put(_) | Self::Patch(_) => "updated",
            Self::Reset(_) => "reset",
            Self::Rollback(_) => "rolled_back",
            Self::Import(_) => "imported",
        }
    }
}

impl App {
    /// The effective preferences of the user `who` is over, with their version (0 and all defaults for a
    /// user who never changed one); `include_sources` adds which values are whose.
    ///
    /// # Errors
    /// When storage fails.
    #[tracing::instrument(name = "app preferences.preferences", skip_all)]
    pub async fn preferences(
        &self,
        who: &AsOwner,
        include_sources: bool,
    ) -> Result<PreferencesDocument, AppError> {
        self.preferences_of(who.user(), include_sources).await
    }

    /// [`Self::preferences`] for a back-end service (`preferences:read`), without sources.
    ///
    /// # Errors
    /// As [`Self::preferences`].
    pub async fn service_preferences(
        &self,
        _service: &AsService<PreferencesRead>,
        user: UserId,
    ) -> Result<PreferencesDocument, AppError> {
        self.preferences_of(user, false).await
    }

    async fn preferences_of(
        &self,
        user: UserId,
        include_sources: bool,
    ) -> Result<PreferencesDocument, AppError> {
        let row = repo::get(self.db().writer(), user.as_uuid()).await?;
        let (version, updated_at, overrides) = current(row.as_ref())?;
        Ok(self.document(version, updated_at, &overrides, include_sources))
    }

    /// PUT: only the keys sent change; `null` sets a nullable field to `null`.
    ///
    /// # Errors
    /// `Validation` by field path, `PreconditionFailed` on a stale `if_match`, storage.
    #[tracing::instrument(name = "app preferences.put_preferences", skip_all)]
    pub async fn put_preferences(
        &self,
        who: &AsOwner,
        partial: Value,
        if_match: Option<i64>,
    ) -> Result<PreferencesDocument, AppError> {
        self.change(who, if_match, Change::Put(partial)).await
    }

    /// PATCH (RFC 7396): `null` removes an override, falling back to the default.
    ///
    /// # Errors
    /// As [`App::put_preferences`].
    #[tracing::instrument(name = "app preferences.patch_preferences", skip_all)]
    pub async fn patch_preferences(
        &self,
        who: &AsOwner,
        patch: Value,
        if_match: Option<i64>,
    ) -> Result<PreferencesDocument, AppError> {
        self.change(who, if_match, Change::Patch(patch)).await
    }

    /// Back to the defaults: everything, or one category.
    ///
    /// # Errors
    /// `PreconditionFailed` on a stale `if_match`, storage.
    #[tracing::instrument(name = "app preferences.reset_preferences", skip_all)]
    pub async fn reset_preferences(
        &self,
        who: &AsOwner,
        category: Option<Category>,
        if_match: Option<i64>,
    ) -> Result<PreferencesDocument, AppError> {
        self.change(who, if_match, Change::Reset(category)).await
    }

    /// Restores the overrides of `version` as a new version (version 0: all defaults).
    ///
    /// # Errors
    /// `NotFound` for a version the user never had, `PreconditionFailed`, storage.
    #[tracing::instrument(name = "app preferences.rollback_preferences", skip_all)]
    pub async fn rollback_preferences(
        &self,
        who: &AsOwner,
        version: i64,
        if_match: Option<i64>,
    ) -> Result<PreferencesDocument, AppError> {
        let snapshot = if version == 0 {
            Overrides::empty()
        } else {
            // History rows never change: read before the write transaction starts.
            let entry = repo::history_version(self.db().writer(), who.user().as_uuid(), version)
                .await?
                .ok_or(AppError::NotFound("preference version"))?;
            stored_overrides(&entry.snapshot, entry.schema_version)?
        };
        self.change(who, if_match, Change::Rollback(snapshot)).await
    }

    /// The portable document: the user's own choices at the current schema version.
    ///
    /// # Errors
    /// When storage fails.
    #[tracing::instrument(name = "app preferences.export_preferences", skip_all)]
    pub async fn export_preferences(&self, who: &AsOwner) -> Result<PreferencesExport, AppError> {
        let row = repo::get(self.db().writer(), who.user().as_uuid()).await?;
        let (_, _, overrides) = current(row.as_ref())?;
        Ok(PreferencesExport::new(&overrides, Utc::now()))
    }

    /// Replaces the user's overrides with an exported document, migrating older schema
    /// versions first.
    ///
    /// # Errors
    /// `Validation` by field path (`preferences.ui.theme`), `PreconditionFailed`, storage.
    #[tracing::instrument(name = "app preferences.import_preferences", skip_all)]
    pub async fn import_preferences(
        &self,
        who: &AsOwner,
        document: &Value,
        if_match: Option<i64>,
    ) -> Result<PreferencesDocument, AppError> {
        let overrides = preferences::import(document)?;
        self.change(who, if_match, Change::Import(overrides)).await
    }

    /// A page of the user's history, newest first. `cursor` is the previous page's
    /// `next_cursor`.
    ///
    /// # Errors
    /// `InvalidRequest` for a malformed cursor, storage.
    #[tracing::instrument(name = "app preferences.preference_history", skip_all)]
    pub async fn preference_history(
        &self,
        who: &AsOwner,
        cursor: Option<&str>,
        limit: u64,
    ) -> Result<HistoryPage, AppError> {
        let before = cursor.map(crate::page::cursor_id).transpose()?;
        let limit = limit.clamp(1, 100);
        let rows =
            repo::history(self.db().reader(), who.user().as_uuid(), before, limit + 1).await?;
        let page = crate::page::Page::from_overfetch(rows, limit, |r| r.version.to_string());
        let items = page
            .items
            .into_iter()
            .map(|r| HistoryItem {
                version: r.version,
                schema_version: r.schema_version,
                changed_at: r.changed_at,
                changed_by: r.changed_by,
                changes: r.changes,
            })
            .collect();
        Ok(HistoryPage {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// The JSON Schema of the document and the system defaults in force.
    #[must_use]
    pub fn preferences_schema(&self) -> PreferencesSchema {
        PreferencesSchema {
            schema: preferences::json_schema(),
            defaults: self.preference_defaults().clone(),
        }
    }

    async fn change(
        &self,
        who: &AsOwner,
        if_match: Option<i64>,
        change: Change,
    ) -> Result<PreferencesDocument, AppError> {
        for _ in 0..ATTEMPTS {
            if let Some(doc) = self
                .try_change(who.ctx(), who.user(), if_match, &change)
                .await?
            {
                return Ok(doc);
            }
            if let Some(v) = if_match {
                return Err(AppError::PreconditionFailed(v.to_string()));
            }
        }
        Err(AppError::Conflict(
            "the preferences are being changed concurrently; try again".to_owned(),
        ))
    }

    /// One attempt; `None` when a concurrent writer won.
    async fn try_change(
        &self,
        ctx: &Ctx,
        user: UserId,
        if_match: Option<i64>,
        change: &Change,
    ) -> Result<Option<PreferencesDocument>, AppError> {
        let action = change.action();
        let txn = self.db().begin().await?;
        let row = repo::get_for_update(&txn, user.as_uuid()).await?;
        let (version, updated_at, before) = current(row.as_ref())?;
        if let Some(expected) = if_match
            && expected != version
        {
            return Err(AppError::PreconditionFailed(expected.to_string()));
        }
        let after = match change {
            Change::Put(partial) => before.partial_update(partial)?,
            Change::Patch(patch) => before.apply_merge_patch(patch)?,
            Change::Reset(category) => before.reset(*category),
            Change::Rollback(o) | Change::Import(o) => o.clone(),
        };
        let changes = before.diff(&after);
        self.check_provider_names(&changes, action)?;
        if changes.as_object().is_some_and(serde_json::Map::is_empty) {
            // Nothing changes: no new version, no history, no audit entry.
            txn.rollback().await?;
            return Ok(Some(self.document(version, updated_at, &before, false)));
        }
        let paths = changed_paths(&changes);
        let at = Utc::now();
        let outcome = repo::write_version(
            &txn,
            NewVersion {
                user_id: user.as_uuid(),
                expected_version: version,
                overrides: after.to_value(),
                changes,
                changed_by: actor_label(ctx),
                at,
            },
        )
        .await?;
        let WriteOutcome::Written {
            version: new_version,
        } = outcome
        else {
            txn.rollback().await?;
            return Ok(None);
        };
        audit::record(
            &txn,
            ctx,
            AuditRecord::new(action, Some(user))
                .resource("preferences", user.to_string())
                .details(json!({"changed": paths, "version": new_version})),
        )
        .await?;
        self.emit(
            &txn,
            crate::events::Event::preferences_updated(user, new_version, &paths, change.cause()),
        )
        .await?;
        txn.commit().await?;
        crate::metrics::preference_change(paths.iter().map(String::as_str));
        Ok(Some(self.document(new_version, Some(at), &after, false)))
    }

    /// `default_calendar_provider` must name a provider of this deployment's catalog (the
    /// domain checks only its form). Checked only when a change sets it, so a provider
    /// later removed from the catalog never blocks unrelated changes.
    fn check_provider_names(&self, changes: &Value, action: AuditAction) -> Result<(), AppError> {
        let Some(name) = changes
            .pointer("/integrations/default_calendar_provider")
            .and_then(Value::as_str)
        else {
            return Ok(());
        };
        if self.catalog().get(name).is_some() {
            return Ok(());
        }
        let prefix = if action == AuditAction::PreferencesImported {
            "preferences."
        } else {
            ""
        };
        let known: Vec<&str> = self.catalog().names().collect();
        Err(domain::ValidationErrors::single(
            format!("{prefix}integrations.default_calendar_provider"),
            format!("must be null or a known provider: {}", known.join(", ")),
        )
        .into())
    }

    fn document(
        &self,
        version: i64,
        updated_at: Option<DateTime<Utc>>,
        overrides: &Overrides,
        include_sources: bool,
    ) -> PreferencesDocument {
        PreferencesDocument {
            schema_version: CURRENT_SCHEMA_VERSION,
            version,
            updated_at,
            preferences: overrides.effective(self.preference_defaults()),
            sources: include_sources.then(|| overrides.sources()),
        }
    }
}

/// Version, last change and overrides of a stored row (upgraded in memory when it is of an
/// older schema version); version 0 and no overrides without a row.
fn current(
    row: Option<&StoredPreferences>,
) -> Result<(i64, Option<DateTime<Utc>>, Overrides), AppError> {
    match row {
        None => Ok((0, None, Overrides::empty())),
        Some(r) => Ok((
            r.version,
            Some(r.updated_at),
            stored_overrides(&r.overrides, r.schema_version)?,
        )),
    }
}

/// Stored overrides (or a history snapshot) of `schema_version`, migrated and validated.
/// Stored data that no longer validates is an internal error, never the caller's.
fn stored_overrides(doc: &Value, schema_version: i32) -> Result<Overrides, AppError> {
    let from = u32::try_from(schema_version).unwrap_or(0);
    preferences::migrate(doc.clone(), from)
        .and_then(|d| Overrides::from_value(&d))
        .map_err(|e| AppError::Internal(format!("stored preferences are invalid: {e}")))
}

/// `kind:id` of the actor, for `changed_by`.
fn actor_label(ctx: &Ctx) -> String {
    match &ctx.actor().id {
        Some(id) => format!("{}:{id}", ctx.actor().kind.as_str()),
        None => ctx.actor().kind.as_str().to_owned(),
    }
}
