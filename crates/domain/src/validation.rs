//! Field-level validation errors, shared by every validated input.

use serde::Serialize;

/// One invalid field: its path (`ui.theme`, `quiet_hours.start`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// All the invalid fields of one input, so a client can fix them in one round trip.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Adds an error.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// `Ok(())` when nothing was pushed.
    ///
    /// # Errors
    /// Returns `self` when at least one field is invalid.
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// A one-error shortcut.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }

    /// "field message; field message" — the problem `detail`.
    #[must_use]
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// serde's message about a value, without the value: `invalid type: string "hunter2",
/// expected a boolean` becomes `invalid type, expected a boolean`. A value may be a secret
/// pasted into the wrong field, and an error must never carry it to logs or clients.
/// Messages of our own validating types say what is wrong without quoting, and pass as they
/// are (only serde's position suffix is dropped).
#[must_use]
pub fn redacted_serde_message(raw: &str) -> String {
    let msg = raw.rsplit_once(" at line ").map_or(raw, |(m, _)| m);
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if msg.starts_with(prefix) {
            let expected = msg
                .split_once(", expected ")
                .map_or("another value", |(_, e)| e);
            let what = prefix.trim_end_matches([':', ' ']);
            return format!("{what}, expected {expected}");
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let expected = rest
            .split_once(", expected ")
            .map_or("another value", |(_, e)| e);
        return format!("must be {expected}");
    }
    msg.to_owned()
}

#[cfg(test)]
mod tests {
    use super::redacted_serde_message as r;

    #[test]
    fn serde_messages_lose_the_value() {
        assert_eq!(
            r(r#"invalid type: string "hunter2", expected a boolean at line 1 column 9"#),
            "invalid type, expected a boolean"
        );
        assert_eq!(
            r("invalid value: integer `-4`, expected u32"),
            "invalid value, expected u32"
        );
        assert_eq!(
            r("unknown variant `s3cr3t`, expected one of `a`, `b`"),
            "must be one of `a`, `b`"
        );
        assert_eq!(r("must be HH:MM"), "must be HH:MM");
    }
}
