//! Schema versions of the overrides document, and the chain of migrations between them.
//!
//! Version 0 (the shape before this service's contract) differed from version 1 in two
//! fields:
//! - `ui.dark_mode: bool` became `ui.theme` (`true` → `dark`, `false` → `light`; `system`
//!   did not exist);
//! - `notifications.digest: "off" | "daily" | "weekly"` became
//!   `notifications.digest_frequency: "never" | "daily" | "weekly"`.
//!
//! Migrations work on the sparse overrides (the stored form and the `preferences` of an
//! export) and only rename and convert; validation of the result is the caller's next step.

use serde_json::{Map, Value};

use crate::ValidationErrors;

/// The schema version this build reads and writes.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// One step: the document at version `i` → version `i + 1`.
type Step = fn(Map<String, Value>) -> Result<Map<String, Value>, ValidationErrors>;

/// `STEPS[i]` upgrades version `i` to `i + 1`; its length is `CURRENT_SCHEMA_VERSION`.
const STEPS: [Step; CURRENT_SCHEMA_VERSION as usize] = [v0_to_v1];

/// Upgrades an overrides document from `from_version` to [`CURRENT_SCHEMA_VERSION`].
///
/// # Errors
/// A version newer than this build knows (`schema_version`), a document that is not an
/// object, or an old field whose value cannot be converted (named by its old path).
pub fn migrate(doc: Value, from_version: u32) -> Result<Value, ValidationErrors> {
    if from_version > CURRENT_SCHEMA_VERSION {
        return Err(ValidationErrors::single(
            "schema_version",
            format!("must be at most {CURRENT_SCHEMA_VERSION}"),
        ));
    }
    let Value::Object(mut map) = doc else {
        return Err(ValidationErrors::single(
            "preferences",
            "must be a JSON object",
        ));
    };
    for step in &STEPS[from_version as usize..] {
        map = step(map)?;
    }
    Ok(Value::Object(map))
}

fn v0_to_v1(mut doc: Map<String, Value>) -> Result<Map<String, Value>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if let Some(Value::Object(ui)) = doc.get_mut("ui")
        && let Some(dark) = ui.remove("dark_mode")
    {
        match dark {
            Value::Bool(d) => {
                // A document that already names a theme keeps it.
                ui.entry("theme")
                    .or_insert_with(|| Value::from(if d { "dark" } else { "light" }));
            }
            Value::Null => {}
            _ => errors.push("ui.dark_mode", "must be a boolean"),
        }
    }
    if let Some(Value::Object(n)) = doc.get_mut("notifications")
        && let Some(digest) = n.remove("digest")
    {
        let renamed = match digest.as_str() {
            Some("off") => Some("never"),
            Some("daily") => Some("daily"),
            Some("weekly") => Some("weekly"),
            _ if digest.is_null() => None,
            _ => {
                errors.push("notifications.digest", "must be one of off, daily, weekly");
                None
            }
        };
        if let Some(r) = renamed {
            n.entry("digest_frequency")
                .or_insert_with(|| Value::from(r));
        }
    }
    errors.into_result().map(|()| doc)
}
