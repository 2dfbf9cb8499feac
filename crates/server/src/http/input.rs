//! The edge check of every text a request carries, run by our extractors (`Query`, `Path`,
//! `Json`, `OptionalJson`, and the `{user_ref}` extractors) before any handler or use case
//! sees it: no control characters, lengths and list sizes bounded (`domain::text`). A query
//! or path that breaks it is 400 `invalid_request`, a body 422 `validation_error`, each
//! naming the field. Fields with tighter rules (names, scopes, URLs) check them in their
//! own newtypes on top of this.

use axum::extract::RawPathParams;
use domain::{
    ValidationErrors,
    text::{
        MAX_BODY_ARRAY_ITEMS, MAX_BODY_KEY_CHARS, MAX_BODY_STRING_CHARS, MAX_PATH_SEGMENT_CHARS,
        MAX_QUERY_VALUE_CHARS, check_text,
    },
};
use serde_json::Value;

use super::error::ApiError;

/// Checks every name and value of a raw query string (after percent-decoding).
///
/// # Errors
/// 400 naming the first bad parameter.
pub fn check_query(query: &str) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| ApiError::invalid_field("query", "is not a valid query string"))?;
    for (name, value) in &pairs {
        check_text(name, MAX_BODY_KEY_CHARS).map_err(|m| {
            // The name itself is hostile: say so without echoing it.
            ApiError::invalid_field("query", format!("parameter names {m}"))
        })?;
        check_text(value, MAX_QUERY_VALUE_CHARS).map_err(|m| ApiError::invalid_field(name, m))?;
    }
    Ok(())
}

/// Checks every path parameter (already percent-decoded).
///
/// # Errors
/// 400 naming the first bad parameter.
pub fn check_path(params: &RawPathParams) -> Result<(), ApiError> {
    for (name, value) in params.iter() {
        check_text(value, MAX_PATH_SEGMENT_CHARS).map_err(|m| ApiError::invalid_field(name, m))?;
    }
    Ok(())
}

/// Checks every string, key and array of a JSON body, naming each bad field by its path
/// (`ui.theme`, `scopes[3]`).
///
/// # Errors
/// 422 with every bad field.
pub fn check_json(value: &Value) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    walk(value, &mut String::new(), &mut errors);
    errors.into_result()
}

/// The body's fields beyond this many errors are not reported (a body of a million bad
/// strings must not make a million-entry answer).
const MAX_REPORTED: usize = 20;

fn walk(value: &Value, path: &mut String, errors: &mut ValidationErrors) {
    if errors.0.len() >= MAX_REPORTED {
        return;
    }
    let here = |path: &str| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        Value::String(s) => {
            if let Err(m) = check_text(s, MAX_BODY_STRING_CHARS) {
                errors.push(here(path), m);
            }
        }
        Value::Array(items) => {
            if items.len() > MAX_BODY_ARRAY_ITEMS {
                errors.push(
                    here(path),
                    format!("must hold at most {MAX_BODY_ARRAY_ITEMS} items"),
                );
                return;
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, errors);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if let Err(m) = check_text(key, MAX_BODY_KEY_CHARS) {
                    // A hostile key is not echoed into the answer.
                    errors.push(here(path), format!("field names {m}"));
                    continue;
                }
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                walk(item, path, errors);
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(v: &Value) -> Vec<(String, String)> {
        check_json(v)
            .err()
            .map(|e| e.0.into_iter().map(|f| (f.field, f.message)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn bodies_name_the_bad_field() {
        assert!(fields(&json!({"first_name": "李小龍", "n": [1, "محمد"]})).is_empty());
        assert_eq!(
            fields(&json!({"ui": {"theme": "a\u{0}b"}})),
            vec![(
                "ui.theme".to_owned(),
                "must not contain control characters".to_owned()
            )]
        );
        assert_eq!(fields(&json!({"scopes": ["ok", "x\n"]}))[0].0, "scopes[1]");
        assert_eq!(fields(&json!("a\u{1}"))[0].0, "body");
        let long = "a".repeat(MAX_BODY_STRING_CHARS + 1);
        assert_eq!(fields(&json!({ "code": long }))[0].0, "code");
        let many = vec![0; MAX_BODY_ARRAY_ITEMS + 1];
        assert_eq!(fields(&json!({ "a": many }))[0].0, "a");
        let bad_key = fields(&json!({"x": {"k\u{0}": 1}}));
        assert_eq!(bad_key[0].0, "x");
        assert!(!bad_key[0].1.contains('\u{0}'));
    }

    #[test]
    fn queries_name_the_bad_parameter() {
        assert!(check_query("q=%C5%81ukasz&limit=5").is_ok());
        let e = check_query("q=a%00b").expect_err("NUL");
        assert_eq!(e.code(), domain::ErrorCode::InvalidRequest);
        assert_eq!(e.errors_for_test()[0].0, "q");
        let long = format!("cursor={}", "a".repeat(MAX_QUERY_VALUE_CHARS + 1));
        assert_eq!(
            check_query(&long).expect_err("long").errors_for_test()[0].0,
            "cursor"
        );
        assert_eq!(
            check_query("a%00=1").expect_err("key").errors_for_test()[0].0,
            "query"
        );
    }
}
