//! The one error-code table. Every error enum in the service maps itself to one of these
//! codes; the HTTP layer turns a code into an RFC 9457 problem document. The `type`
//! strings and their statuses are part of the public contract (API.md): never rename one.

/// A stable error code: the problem `type`, its HTTP status and its title.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidRequest,
    Unauthorized,
    InvalidSignature,
    Forbidden,
    InsufficientScope,
    NotFound,
    MethodNotAllowed,
    Conflict,
    ReauthorizationRequired,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationError,
    RateLimited,
    InternalError,
    ProviderError,
    ServiceUnavailable,
    ProviderUnreachable,
    ProviderTimeout,
}

impl ErrorCode {
    /// Every code, for documentation and for tests that pin the table.
    pub const ALL: [Self; 19] = [
        Self::InvalidRequest,
        Self::Unauthorized,
        Self::InvalidSignature,
        Self::Forbidden,
        Self::InsufficientScope,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::ReauthorizationRequired,
        Self::PreconditionFailed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ValidationError,
        Self::RateLimited,
        Self::InternalError,
        Self::ProviderError,
        Self::ServiceUnavailable,
        Self::ProviderUnreachable,
        Self::ProviderTimeout,
    ];

    /// The problem `type` value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        self.row().0
    }

    /// The HTTP status code that goes with this type.
    #[must_use]
    pub const fn status(self) -> u16 {
        self.row().1
    }

    /// A short, human-readable summary that does not change between occurrences.
    #[must_use]
    pub const fn title(self) -> &'static str {
        self.row().2
    }

    /// The table itself: one row per code, so type, status and title cannot drift apart.
    const fn row(self) -> (&'static str, u16, &'static str) {
        match self {
            Self::InvalidRequest => ("invalid_request", 400, "Invalid request"),
            Self::Unauthorized => ("unauthorized", 401, "Authentication required"),
            Self::InvalidSignature => ("invalid_signature", 401, "Invalid webhook signature"),
            Self::Forbidden => ("forbidden", 403, "Forbidden"),
            Self::InsufficientScope => ("insufficient_scope", 403, "Insufficient OAuth scope"),
            Self::NotFound => ("not_found", 404, "Resource not found"),
            // Not named by API.md; 405 needs a type of its own to stay problem+json.
            Self::MethodNotAllowed => ("method_not_allowed", 405, "Method not allowed"),
            Self::Conflict => ("conflict", 409, "Conflict"),
            Self::ReauthorizationRequired => (
                "reauthorization_required",
                409,
                "The user must reconnect this integration",
            ),
            Self::PreconditionFailed => ("precondition_failed", 412, "Precondition failed"),
            Self::PayloadTooLarge => ("payload_too_large", 413, "Request body too large"),
            Self::UnsupportedMediaType => ("unsupported_media_type", 415, "Unsupported media type"),
            Self::ValidationError => ("validation_error", 422, "Request validation failed"),
            Self::RateLimited => ("rate_limited", 429, "Too many requests"),
            Self::InternalError => ("internal_error", 500, "Internal server error"),
            Self::ProviderError => ("provider_error", 502, "OAuth provider error"),
            Self::ServiceUnavailable => ("service_unavailable", 503, "Service unavailable"),
            // The provider proxy: the provider's API gave no answer, or none in time.
            Self::ProviderUnreachable => ("provider_unreachable", 502, "Provider API unreachable"),
            Self::ProviderTimeout => ("provider_timeout", 504, "Provider API timed out"),
        }
    }

    /// Looks a code up by its `type` string.
    #[must_use]
    pub fn from_type(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn contract_types_and_statuses_are_pinned() {
        let expected = [
            ("invalid_request", 400),
            ("unauthorized", 401),
            ("invalid_signature", 401),
            ("forbidden", 403),
            ("insufficient_scope", 403),
            ("not_found", 404),
            ("method_not_allowed", 405),
            ("conflict", 409),
            ("reauthorization_required", 409),
            ("precondition_failed", 412),
            ("payload_too_large", 413),
            ("unsupported_media_type", 415),
            ("validation_error", 422),
            ("rate_limited", 429),
            ("internal_error", 500),
            ("provider_error", 502),
            ("service_unavailable", 503),
            ("provider_unreachable", 502),
            ("provider_timeout", 504),
        ];
        for (ty, status) in expected {
            let code = ErrorCode::from_type(ty).unwrap_or_else(|| panic!("{ty} missing"));
            assert_eq!(code.status(), status, "{ty}");
        }
        // Every code is pinned: a new one must be added here, a reviewed change.
        let mut pinned: Vec<_> = expected.iter().map(|(ty, _)| *ty).collect();
        let mut all: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        pinned.sort_unstable();
        all.sort_unstable();
        assert_eq!(pinned, all, "the table above covers ErrorCode::ALL");
    }

    #[test]
    fn types_are_unique() {
        let mut types: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), ErrorCode::ALL.len());
    }
}
