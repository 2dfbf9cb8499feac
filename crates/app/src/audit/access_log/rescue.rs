//! An entry the database refused on its data (a NUL that Postgres' jsonb and text reject,
//! a value a constraint refuses) is not retried as it is — that would stall every entry
//! behind it — and not set aside outside the chain either: it is written, in the chain, in
//! a form the database takes, with a marker in its details saying what happened.
//!
//! First `escaped`: every control character in every field is replaced by its visible
//! `\uXXXX` spelling, so nothing is lost but the raw byte. If that is refused too, a
//! `stub`: only the fields our own code fills from fixed words (actor type, action,
//! outcome, resource type), the time and the user id, so the chain still shows that an
//! access happened and when. Only when even the stub is refused is the entry lost — logged,
//! counted, and its caller refused (what could not be audited is not served).

use serde_json::{Map, Value, json};
use store::{Db, audit::NewAuditEntry};

use super::{Lost, Retry, write};
use crate::audit::with_digest;

/// Writes the safe forms of `entry` in turn until one is taken; `code` is the database's
/// error code for the original. Outages in between are retried like any batch.
pub(super) async fn save(db: &Db, entry: &NewAuditEntry, code: &str) -> Result<(), Lost> {
    for (form, safe) in [
        ("escaped", escaped(entry, code)),
        ("stub", stub(entry, code)),
    ] {
        let mut retry = Retry::default();
        loop {
            match write(db, std::slice::from_ref(&safe)).await {
                Ok(()) => {
                    // The action and request id find the request; no field value is logged.
                    tracing::warn!(action = %entry.action, request_id = ?entry.request_id,
                        code, form, "the database refused an audit entry; written in a safe form");
                    crate::metrics::audit_entry_rejected(form);
                    return Ok(());
                }
                Err(e) if e.data_error_code().is_some() => break,
                Err(e) => retry.wait(&e, 1).await,
            }
        }
    }
    tracing::error!(action = %entry.action, request_id = ?entry.request_id, code,
        "the database refused an audit entry in every safe form; it is lost and its request refused");
    crate::metrics::audit_entry_rejected("lost");
    Err(Lost)
}

/// The entry with every control character spelled out, and the marker.
fn escaped(e: &NewAuditEntry, code: &str) -> NewAuditEntry {
    let s = |v: &str| escape(v);
    let o = |v: &Option<String>| v.as_deref().map(escape);
    with_digest(NewAuditEntry {
        occurred_at: e.occurred_at,
        actor_type: s(&e.actor_type),
        actor_id: o(&e.actor_id),
        action: s(&e.action),
        user_id: e.user_id,
        resource_type: o(&e.resource_type),
        resource_id: o(&e.resource_id),
        outcome: s(&e.outcome),
        ip: o(&e.ip),
        user_agent: o(&e.user_agent),
        request_id: o(&e.request_id),
        details: marked(escape_json(&e.details), "escaped", code),
        pii_digest: None,
    })
}

/// Only what our code fills from fixed words, the time and the user, and the marker.
fn stub(e: &NewAuditEntry, code: &str) -> NewAuditEntry {
    with_digest(NewAuditEntry {
        occurred_at: e.occurred_at,
        actor_type: escape(&e.actor_type),
        actor_id: None,
        action: escape(&e.action),
        user_id: e.user_id,
        resource_type: e.resource_type.as_deref().map(escape),
        resource_id: None,
        outcome: escape(&e.outcome),
        ip: None,
        user_agent: None,
        request_id: None,
        details: marked(Value::Object(Map::new()), "stub", code),
        pii_digest: None,
    })
}

/// `details` with `audit_rescue: {form, error}`; details that are not an object are kept
/// under `value`.
fn marked(details: Value, form: &str, code: &str) -> Value {
    let mut map = match details {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    map.insert(
        "audit_rescue".to_owned(),
        json!({"form": form, "error": escape(code)}),
    );
    Value::Object(map)
}

fn escape_json(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(escape(s)),
        Value::Array(items) => Value::Array(items.iter().map(escape_json).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (escape(k), escape_json(v))).collect())
        }
        other => other.clone(),
    }
}

/// Control characters (NUL included) as the six visible characters `\uXXXX`.
fn escape(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_spelled_out() {
        assert_eq!(escape("a\u{0}b\nc"), "a\\u0000b\\u000ac");
        let d = escape_json(&json!({"scopes": ["\u{0}"], "k\u{0}": 1}));
        assert_eq!(d, json!({"scopes": ["\\u0000"], "k\\u0000": 1}));
        assert_eq!(
            marked(json!([1]), "stub", "22P05"),
            json!({"value": [1], "audit_rescue": {"form": "stub", "error": "22P05"}})
        );
    }
}
