//! The typed preferences: five categories, every field with its type and built-in default
//! (API.md "Preferences"). Unknown fields are refused at every level.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::values::{
    DataRetentionDays, DateFormat, Density, DigestFrequency, HhMm, LanguageTag, ModelName,
    ProfileVisibility, ProviderName, ResponseStyle, SyncFrequencyMinutes, Theme, TimeFormat,
    Timezone,
};

/// The effective preferences of one user: every field has a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    pub ui: UiPreferences,
    pub notifications: NotificationPreferences,
    pub ai: AiPreferences,
    pub integrations: IntegrationPreferences,
    pub privacy: PrivacyPreferences,
}

/// `ui`: how the front end looks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UiPreferences {
    pub theme: Theme,
    pub language: LanguageTag,
    pub timezone: Timezone,
    pub date_format: DateFormat,
    pub time_format: TimeFormat,
    pub density: Density,
}

/// `notifications`: which channels, how often, and when to stay quiet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferences {
    pub email_enabled: bool,
    pub push_enabled: bool,
    pub in_app_enabled: bool,
    pub digest_frequency: DigestFrequency,
    pub quiet_hours: QuietHours,
    pub marketing_emails: bool,
}

/// `notifications.quiet_hours`: a daily window (it may wrap past midnight).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub enabled: bool,
    pub start: HhMm,
    pub end: HhMm,
}

/// `ai`: the assistant's behaviour and what it may keep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiPreferences {
    pub personalization_enabled: bool,
    pub response_style: ResponseStyle,
    /// `null`: the service picks.
    pub preferred_model: Option<ModelName>,
    pub memory_enabled: bool,
    pub data_sharing_consent: bool,
}

/// `integrations`: syncing of connected accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationPreferences {
    pub calendar_sync_enabled: bool,
    pub email_sync_enabled: bool,
    pub sync_frequency_minutes: SyncFrequencyMinutes,
    /// `null`: none chosen.
    pub default_calendar_provider: Option<ProviderName>,
}

/// `privacy`: visibility, tracking and retention.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyPreferences {
    pub profile_visibility: ProfileVisibility,
    pub analytics_opt_in: bool,
    pub activity_tracking_enabled: bool,
    pub data_retention_days: DataRetentionDays,
}

impl Preferences {
    /// The built-in system defaults (API.md), before configuration overrides them.
    #[must_use]
    pub fn builtin() -> Self {
        Self {
            ui: UiPreferences {
                theme: Theme::System,
                language: LanguageTag::trusted("en"),
                timezone: Timezone::trusted("UTC"),
                date_format: DateFormat::Iso,
                time_format: TimeFormat::H24,
                density: Density::Comfortable,
            },
            notifications: NotificationPreferences {
                email_enabled: true,
                push_enabled: true,
                in_app_enabled: true,
                digest_frequency: DigestFrequency::Weekly,
                quiet_hours: QuietHours {
                    enabled: false,
                    start: HhMm::trusted("22:00"),
                    end: HhMm::trusted("07:00"),
                },
                marketing_emails: false,
            },
            ai: AiPreferences {
                personalization_enabled: true,
                response_style: ResponseStyle::Balanced,
                preferred_model: None,
                memory_enabled: true,
                data_sharing_consent: false,
            },
            integrations: IntegrationPreferences {
                calendar_sync_enabled: true,
                email_sync_enabled: true,
                sync_frequency_minutes: SyncFrequencyMinutes::trusted(15),
                default_calendar_provider: None,
            },
            privacy: PrivacyPreferences {
                profile_visibility: ProfileVisibility::Private,
                analytics_opt_in: false,
                activity_tracking_enabled: true,
                data_retention_days: DataRetentionDays::trusted(365),
            },
        }
    }
}

impl Default for Preferences {
    fn default() -> Self {
        Self::builtin()
    }
}

/// The preferences document as served: the effective values and where they stand.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PreferencesDocument {
    /// The version of the document's shape (`CURRENT_SCHEMA_VERSION`).
    pub schema_version: u32,
    /// The user's version: 0 before the first change, +1 per change (the `ETag`).
    pub version: i64,
    /// When the user last changed a preference; `null` before the first change.
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub preferences: Preferences,
    /// With `?include=sources`: the same shape, each field `default` or `user`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<serde_json::Value>,
}

/// The OpenAPI shape of [`PreferencesDocument`], spelled out: utoipa renders
/// `#[serde(flatten)]` as `allOf` with [`Preferences`], whose `additionalProperties: false`
/// would then forbid `schema_version`, `version` and `updated_at` in every answer.
#[derive(ToSchema)]
#[schema(as = PreferencesDocument)]
#[allow(dead_code)] // Schema only: the serialized type is `PreferencesDocument`.
struct DocumentShape {
    /// The version of the document's shape (`CURRENT_SCHEMA_VERSION`).
    schema_version: u32,
    /// The user's version: 0 before the first change, +1 per change (the `ETag`).
    version: i64,
    /// When the user last changed a preference; `null` before the first change.
    updated_at: Option<DateTime<Utc>>,
    ui: UiPreferences,
    notifications: NotificationPreferences,
    ai: AiPreferences,
    integrations: IntegrationPreferences,
    privacy: PrivacyPreferences,
    /// With `?include=sources`: the same shape, each field `default` or `user`.
    #[schema(value_type = Option<Object>)]
    sources: Option<serde_json::Value>,
}

impl utoipa::PartialSchema for PreferencesDocument {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <DocumentShape as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for PreferencesDocument {
    fn name() -> std::borrow::Cow<'static, str> {
        <DocumentShape as ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <DocumentShape as ToSchema>::schemas(schemas);
    }
}
