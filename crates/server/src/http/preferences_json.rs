//! The wire shapes of the preferences routes that are not domain types: query strings,
//! the rollback body, the history page, the schema answer, and the `If-Match` header.

use app::preferences::HistoryPage;
use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};
use chrono::{DateTime, Utc};
use domain::{
    ErrorCode, ValidationErrors,
    preferences::{Category, Preferences},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;

/// The default and largest history page sizes.
const LIMIT: app::page::PageLimit = app::page::PageLimit {
    default: 20,
    max: 100,
};

/// `GET /preferences/schema`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesSchemaBody {
    /// JSON Schema (2020-12) of the preferences document, generated from the service's types.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    /// The system defaults in force.
    pub defaults: Preferences,
}

/// `?include=sources` of `GET …/preferences`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncludeQuery {
    /// `sources`: add which values are the system's defaults and which are the user's.
    pub include: Option<String>,
}

impl IncludeQuery {
    /// Whether the sources were asked for.
    ///
    /// # Errors
    /// 422 naming `include` for anything but `sources`.
    pub fn sources(&self) -> Result<bool, ApiError> {
        match self.include.as_deref() {
            None | Some("") => Ok(false),
            Some("sources") => Ok(true),
            Some(_) => Err(ValidationErrors::single("include", "must be sources").into()),
        }
    }
}

/// `?category=` of reset.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResetQuery {
    /// `ui`, `notifications`, `ai`, `integrations` or `privacy`; all when absent.
    pub category: Option<String>,
}

impl ResetQuery {
    /// The category to reset, `None` for all.
    ///
    /// # Errors
    /// 422 naming `category` for an unknown one.
    pub fn category(&self) -> Result<Option<Category>, ApiError> {
        self.category
            .as_deref()
            .map(|c| {
                c.parse::<Category>()
                    .map_err(|m| ApiError::from(ValidationErrors::single("category", m)))
            })
            .transpose()
    }
}

/// `?limit=&cursor=` of history.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size, 1–100 (default 20).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl HistoryQuery {
    /// The page size.
    ///
    /// # Errors
    /// 400 outside 1–100.
    pub fn limit(&self) -> Result<u64, ApiError> {
        Ok(LIMIT.check(self.limit)?)
    }
}

/// One version in the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItemBody {
    /// The version this change made.
    pub version: i64,
    /// The schema version the change was written under.
    pub schema_version: i32,
    /// When.
    pub changed_at: DateTime<Utc>,
    /// Who: `user:<clerk id>`, `service:<key name>`, `system`.
    pub changed_by: String,
    /// The RFC 7396 merge patch from the previous version to this one.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

/// A page of history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryBody {
    /// The versions on this page.
    pub items: Vec<HistoryItemBody>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl From<HistoryPage> for HistoryBody {
    fn from(p: HistoryPage) -> Self {
        Self {
            items: p
                .items
                .into_iter()
                .map(|i| HistoryItemBody {
                    version: i.version,
                    schema_version: i.schema_version,
                    changed_at: i.changed_at,
                    changed_by: i.changed_by,
                    changes: i.changes,
                })
                .collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// `POST …/preferences/rollback`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version to restore (0: all defaults).
    pub version: i64,
}

impl RollbackBody {
    /// The version, checked.
    ///
    /// # Errors
    /// 422 naming `version` when negative.
    pub fn version(&self) -> Result<i64, ApiError> {
        if self.version < 0 {
            return Err(ValidationErrors::single("version", "must be 0 or more").into());
        }
        Ok(self.version)
    }
}

/// The `If-Match` precondition (RFC 9110 §13.1.1). Our entity tags are strong:
/// `"<version>"`. `*` always holds (the document always exists, if only as defaults); a
/// weak or foreign tag can never match, so it fails with 412 without reaching storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: write whatever the current version.
    Absent,
    /// `*`.
    Any,
    /// `"<version>"`.
    Version(i64),
    /// Tags that can never match this resource.
    Never,
}

impl IfMatch {
    /// Parses the header values (several headers and comma-separated lists alike).
    #[must_use]
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Self {
        let mut seen = false;
        let mut versions = Vec::new();
        for tag in values.flat_map(|v| v.split(',')).map(str::trim) {
            if tag.is_empty() {
                continue;
            }
            seen = true;
            if tag == "*" {
                return Self::Any;
            }
            if let Some(v) = tag
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .and_then(|t| t.parse::<i64>().ok())
            {
                versions.push(v);
            }
        }
        match versions.as_slice() {
            _ if !seen => Self::Absent,
            [v] => Self::Version(*v),
            // Several versions: only one can be current; the storage check takes one, so a
            // list is refused rather than half-honoured.
            _ => Self::Never,
        }
    }

    /// The version to check in storage (`None`: no check).
    ///
    /// # Errors
    /// 412 `precondition_failed` when the tags can never match.
    pub fn version(&self) -> Result<Option<i64>, ApiError> {
        match self {
            Self::Absent | Self::Any => Ok(None),
            Self::Version(v) => Ok(Some(*v)),
            Self::Never => Err(ApiError::new(ErrorCode::PreconditionFailed)
                .detail("If-Match must be one entity tag \"<version>\" or *")),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let values = parts.headers.get_all(header::IF_MATCH);
        let mut texts = Vec::new();
        for v in values {
            texts.push(v.to_str().map_err(|_| {
                ApiError::new(ErrorCode::InvalidRequest).detail("If-Match is not valid text")
            })?);
        }
        Ok(Self::parse(texts.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::IfMatch;

    fn parse(v: &[&str]) -> IfMatch {
        IfMatch::parse(v.iter().copied())
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(parse(&[]), IfMatch::Absent);
        assert_eq!(parse(&["\"7\""]), IfMatch::Version(7));
        assert_eq!(parse(&[" \"0\" "]), IfMatch::Version(0));
        assert_eq!(parse(&["*"]), IfMatch::Any);
        // Weak tags never match under If-Match (strong comparison).
        assert_eq!(parse(&["W/\"7\""]), IfMatch::Never);
        assert_eq!(parse(&["7"]), IfMatch::Never);
        assert_eq!(parse(&["\"abc\""]), IfMatch::Never);
        assert_eq!(parse(&["\"6\", \"7\""]), IfMatch::Never);
        assert_eq!(parse(&["\"6\"", "\"7\""]), IfMatch::Never);
    }
}
