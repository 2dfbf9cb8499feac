//! The portable export document, and the import that accepts older schema versions.
//!
//! An export carries the user's own choices (the overrides), not the effective values: a
//! default a user never chose stays a default after import elsewhere.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{CURRENT_SCHEMA_VERSION, Overrides, migrate};
use crate::ValidationErrors;

/// `GET …/preferences/export` and the body of `POST …/preferences/import`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesExport {
    /// The schema version of `preferences` (older versions are migrated on import).
    pub schema_version: u32,
    /// When it was exported (informative; ignored on import).
    #[serde(default)]
    pub exported_at: Option<DateTime<Utc>>,
    /// The user's overrides: a sparse document of the preference fields.
    #[schema(value_type = Object)]
    pub preferences: Value,
}

impl PreferencesExport {
    /// The export of `overrides` at the current schema version.
    #[must_use]
    pub fn new(overrides: &Overrides, at: DateTime<Utc>) -> Self {
        Self {
            schema_version: CURRENT_SCHEMA_VERSION,
            exported_at: Some(at),
            preferences: overrides.to_value(),
        }
    }
}

/// Reads an import document: checks its shape, migrates it from its schema version, and
/// validates the result. Field paths of the preferences are prefixed `preferences.`.
///
/// # Errors
/// Every problem found, by field path.
pub fn import(doc: &Value) -> Result<Overrides, ValidationErrors> {
    let export: PreferencesExport = serde_json::from_value(doc.clone())
        .map_err(|e| ValidationErrors::single("document", e.to_string()))?;
    let migrated = migrate(export.preferences, export.schema_version).map_err(prefixed)?;
    Overrides::from_value(&migrated).map_err(prefixed)
}

fn prefixed(e: ValidationErrors) -> ValidationErrors {
    ValidationErrors(
        e.0.into_iter()
            .map(|mut f| {
                if f.field != "schema_version" && f.field != "preferences" {
                    f.field = format!("preferences.{}", f.field);
                }
                f
            })
            .collect(),
    )
}
