//! The use-case error. Each variant maps to one code of the error-code table in `domain`;
//! the HTTP layer only translates, it never decides.

use domain::{ErrorCode, ValidationErrors};

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input broke a rule; each field says which.
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// The thing asked for does not exist (or the caller may not know it exists).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The caller's version is stale (`If-Match`).
    #[error("the resource has changed since version {0}")]
    PreconditionFailed(String),
    /// Malformed or unusable input that is not a field error.
    #[error("{0}")]
    InvalidRequest(String),
    /// The caller lacks a right.
    #[error("{0}")]
    Forbidden(String),
    /// The OAuth provider refused or failed; the message names the provider and the OAuth
    /// error code, never a token.
    #[error("{0}")]
    Provider(String),
    /// The provider rejected the refresh token: the user must reconnect.
    #[error("{0}")]
    ReauthorizationRequired(String),
    /// The token lacks scopes the caller needs (listed).
    #[error("the token lacks the scopes {}", .0.join(", "))]
    InsufficientScope(Vec<String>),
    /// The provider proxy got no answer from the provider's API (refused, reset, not
    /// resolvable, or a non-public address the configuration did not name).
    #[error("{0}")]
    ProviderUnreachable(String),
    /// The provider's API did not answer within the proxy's time limit.
    #[error("{0}")]
    ProviderTimeout(String),
    /// A body larger than the limit of the route.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A dependency (Clerk's API, the audit log that does not commit, …) cannot do its part
    /// now; the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed; details are logged, never sent. A database that is down, locked,
    /// read-only or full is `service_unavailable` (see [`AppError::is_unavailable`]).
    #[error("storage failure: {0}")]
    Store(#[from] store::StoreError),
    /// Anything else internal; details are logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// The code of the error-code table this error maps to.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::ValidationError,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::PreconditionFailed(_) => ErrorCode::PreconditionFailed,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Provider(_) => ErrorCode::ProviderError,
            Self::ReauthorizationRequired(_) => ErrorCode::ReauthorizationRequired,
            Self::InsufficientScope(_) => ErrorCode::InsufficientScope,
            Self::ProviderUnreachable(_) => ErrorCode::ProviderUnreachable,
            Self::ProviderTimeout(_) => ErrorCode::ProviderTimeout,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Store(e) if e.is_unavailable() => ErrorCode::ServiceUnavailable,
            Self::Store(_) | Self::Internal(_) => ErrorCode::InternalError,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
        }
    }

    /// True when a dependency could not do the work now (the database is unreachable,
    /// timed out, locked, read-only or full): the caller may retry, nothing was changed.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        self.code() == ErrorCode::ServiceUnavailable
    }
}
