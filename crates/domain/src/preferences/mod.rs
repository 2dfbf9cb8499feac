//! User preferences (API.md "Preferences"): the typed document, its validated values, the
//! sparse overrides that are stored, inheritance from system defaults, RFC 7396 merge
//! patches, schema migrations, the portable export and the generated JSON Schema.
//!
//! Effective preferences = system defaults overlaid with the user's overrides; only the
//! overrides are stored, so a changed system default reaches everyone who never set it.

mod migrate;
mod model;
mod overrides;
mod portable;
mod schema;
#[cfg(test)]
mod tests;
mod values;

pub use migrate::{CURRENT_SCHEMA_VERSION, migrate};
pub use model::{
    AiPreferences, IntegrationPreferences, NotificationPreferences, Preferences,
    PreferencesDocument, PrivacyPreferences, QuietHours, UiPreferences,
};
pub use overrides::{Overrides, changed_paths};
pub use portable::{PreferencesExport, import};
pub use schema::json_schema;
pub use values::{
    DataRetentionDays, DateFormat, Density, DigestFrequency, HhMm, LanguageTag, ModelName,
    ProfileVisibility, ProviderName, ResponseStyle, SyncFrequencyMinutes, Theme, TimeFormat,
    Timezone,
};

use serde_json::Value;

use crate::ValidationErrors;

values::string_enum!(
    /// One of the five groups of the document (`?category=` of reset).
    Category {
        Ui = "ui",
        Notifications = "notifications",
        Ai = "ai",
        Integrations = "integrations",
        Privacy = "privacy",
    }
);

/// The system defaults: the built-in ones overlaid with a partial document from the
/// configuration file (`[preferences_defaults]`), validated like a user's PUT.
///
/// # Errors
/// Every unknown key and invalid value of `configured`, by field path.
pub fn defaults_with(configured: &Value) -> Result<Preferences, ValidationErrors> {
    let builtin = Preferences::builtin();
    Ok(Overrides::empty()
        .partial_update(configured)?
        .effective(&builtin))
}

/// The effective preferences of a user (see [`Overrides::effective`]).
#[must_use]
pub fn effective(defaults: &Preferences, overrides: &Overrides) -> Preferences {
    overrides.effective(defaults)
}
