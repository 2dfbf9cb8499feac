//! The stored form: only the user's overrides, a sparse JSON object shaped like the
//! document. Validation walks the document's shape (taken from the typed defaults, so the
//! shape is not written twice) and checks each leaf by deserializing it into its Rust type.
//!
//! `null` has two meanings, chosen by the operation:
//! - PATCH (RFC 7396 merge patch): `null` removes the override, so the field falls back to
//!   the system default; `{"ui": null}` removes every `ui` override.
//! - PUT (partial update) and stored/imported documents: `null` is a value. A nullable field
//!   (`ai.preferred_model`, `integrations.default_calendar_provider`) is pinned to `null`
//!   even if the system default later becomes non-null; elsewhere `null` is invalid.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Category, Preferences};
use crate::ValidationErrors;

/// What `null` means in an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nulls {
    /// Merge patch: remove the override.
    Remove,
    /// PUT and stored documents: a value, valid only for nullable fields.
    Value,
}

/// The document's shape: the built-in defaults as JSON (objects are groups, the rest leaves).
static SHAPE: LazyLock<Value> =
    LazyLock::new(|| serde_json::to_value(Preferences::builtin()).unwrap_or_default());

/// One user's overrides, validated: every key known, every value valid, no empty groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Overrides(Map<String, Value>);

impl Overrides {
    /// No overrides: everything is the system default.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// Validates a whole overrides document (stored, imported, or a snapshot), with `null`
    /// as a value.
    ///
    /// # Errors
    /// Every unknown key and invalid value, by field path.
    pub fn from_value(doc: &Value) -> Result<Self, ValidationErrors> {
        let checked = check_root(doc, Nulls::Value)?;
        let mut map = Map::new();
        overlay(&mut map, &checked, Nulls::Value);
        Ok(Self(map))
    }

    /// The overrides as a JSON object.
    #[must_use]
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// True when the user overrides nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// RFC 7396: applies a merge patch; `null` removes an override. Unknown keys and
    /// invalid values are refused with their path, and nothing is applied then.
    ///
    /// # Errors
    /// Every unknown key and invalid value of `patch`, by field path.
    pub fn apply_merge_patch(&self, patch: &Value) -> Result<Self, ValidationErrors> {
        let checked = check_root(patch, Nulls::Remove)?;
        let mut map = self.0.clone();
        overlay(&mut map, &checked, Nulls::Remove);
        Ok(Self(map))
    }

    /// PUT: only the keys sent change; `null` is a value (see the module doc).
    ///
    /// # Errors
    /// Every unknown key and invalid value of `partial`, by field path.
    pub fn partial_update(&self, partial: &Value) -> Result<Self, ValidationErrors> {
        let checked = check_root(partial, Nulls::Value)?;
        let mut map = self.0.clone();
        overlay(&mut map, &checked, Nulls::Value);
        Ok(Self(map))
    }

    /// Removes every override, or those of one category.
    #[must_use]
    pub fn reset(&self, category: Option<Category>) -> Self {
        match category {
            None => Self::empty(),
            Some(c) => {
                let mut map = self.0.clone();
                map.remove(c.as_str());
                Self(map)
            }
        }
    }

    /// The effective preferences: `defaults` overlaid with these overrides.
    #[must_use]
    pub fn effective(&self, defaults: &Preferences) -> Preferences {
        let mut base = serde_json::to_value(defaults).unwrap_or_default();
        if let Value::Object(map) = &mut base {
            overlay(map, &self.0, Nulls::Value);
        }
        // Each leaf was checked against its own type and leaves are independent, so the
        // overlay of valid overrides on valid defaults always deserializes.
        serde_json::from_value(base).unwrap_or_else(|_| defaults.clone())
    }

    /// Which fields are the user's (`user`) and which the system's (`default`), in the
    /// shape of the document (`?include=sources`).
    #[must_use]
    pub fn sources(&self) -> Value {
        fn walk(shape: &Value, overrides: Option<&Value>) -> Value {
            match shape {
                Value::Object(fields) => Value::Object(
                    fields
                        .iter()
                        .map(|(k, v)| (k.clone(), walk(v, overrides.and_then(|o| o.get(k)))))
                        .collect(),
                ),
                _ => Value::String(
                    if overrides.is_some() {
                        "user"
                    } else {
                        "default"
                    }
                    .into(),
                ),
            }
        }
        walk(&SHAPE, Some(&self.to_value()))
    }

    /// The merge patch that turns `self` into `after` (each removed override becomes `null`):
    /// what the history stores as `changes`. An explicit `null` value set by PUT also shows
    /// as `null` here; the history snapshot is the authority for such a version.
    #[must_use]
    pub fn diff(&self, after: &Self) -> Value {
        Value::Object(diff_maps(&self.0, &after.0))
    }
}

/// The leaf paths a merge patch touches (`ui.theme`, or `ui` when a whole group is reset),
/// sorted: the audit details of a change.
#[must_use]
pub fn changed_paths(patch: &Value) -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            _ if !prefix.is_empty() => out.push(prefix.to_owned()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", patch, &mut out);
    out.sort();
    out
}

fn as_object(v: &Value) -> &Map<String, Value> {
    static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
    v.as_object().unwrap_or(&EMPTY)
}

/// Checks `input` against the shape and returns it with every leaf in canonical form
/// (`europe/berlin` → `Europe/Berlin`); collects every error.
fn check_root(input: &Value, nulls: Nulls) -> Result<Map<String, Value>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let checked = match input {
        Value::Object(given) => check_group(as_object(&SHAPE), given, "", nulls, &mut errors),
        _ => {
            errors.push("preferences", "must be a JSON object");
            Map::new()
        }
    };
    errors.into_result().map(|()| checked)
}

fn check_group(
    fields: &Map<String, Value>,
    given: &Map<String, Value>,
    prefix: &str,
    nulls: Nulls,
    errors: &mut ValidationErrors,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in given {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let checked = match (fields.get(key), value) {
            (None, _) => Err("is not a known field".to_owned()),
            (Some(_), Value::Null) if nulls == Nulls::Remove => Ok(Value::Null),
            (Some(Value::Object(inner)), Value::Object(v)) => {
                Ok(Value::Object(check_group(inner, v, &path, nulls, errors)))
            }
            (Some(Value::Object(_)), _) => Err("must be an object".to_owned()),
            (Some(_), _) => check_leaf(&path, value),
        };
        match checked {
            Ok(v) => {
                out.insert(key.clone(), v);
            }
            Err(message) => errors.push(path, message),
        }
    }
    out
}

/// Checks one leaf by putting it into the defaults and deserializing the typed document:
/// the Rust types are the only statement of the rules. Returns the canonical value.
fn check_leaf(path: &str, value: &Value) -> Result<Value, String> {
    let pointer = format!("/{}", path.replace('.', "/"));
    let mut candidate = SHAPE.clone();
    if let Some(slot) = candidate.pointer_mut(&pointer) {
        *slot = value.clone();
    }
    let typed = serde_json::from_value::<Preferences>(candidate)
        .map_err(|e| crate::redacted_serde_message(&e.to_string()))?;
    let canonical =
        serde_json::to_value(typed).map_err(|e| crate::redacted_serde_message(&e.to_string()))?;
    Ok(canonical
        .pointer(&pointer)
        .cloned()
        .unwrap_or_else(|| value.clone()))
}

/// Overlays `patch` onto `target` (both checked). With `Nulls::Remove` a `null` deletes;
/// groups left empty are dropped, so the stored form stays sparse.
fn overlay(target: &mut Map<String, Value>, patch: &Map<String, Value>, nulls: Nulls) {
    for (key, value) in patch {
        match value {
            Value::Null if nulls == Nulls::Remove => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let mut group = match target.remove(key) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                overlay(&mut group, inner, nulls);
                if !group.is_empty() {
                    target.insert(key.clone(), Value::Object(group));
                }
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn diff_maps(before: &Map<String, Value>, after: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, old) in before {
        if !after.contains_key(key) {
            // A removed group lists its removed fields, so history and audit name each one.
            let removed = match old {
                Value::Object(inner) => Value::Object(diff_maps(inner, &Map::new())),
                _ => Value::Null,
            };
            out.insert(key.clone(), removed);
        }
    }
    for (key, new) in after {
        match (before.get(key), new) {
            (Some(Value::Object(old)), Value::Object(new)) => {
                let inner = diff_maps(old, new);
                if !inner.is_empty() {
                    out.insert(key.clone(), Value::Object(inner));
                }
            }
            (Some(old), new) if old == new => {}
            _ => {
                out.insert(key.clone(), new.clone());
            }
        }
    }
    out
}
