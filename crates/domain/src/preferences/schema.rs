//! The JSON Schema of the preferences document, generated from the Rust types through
//! utoipa (already used for the OpenAPI document): one derive describes both, so the schema
//! cannot drift from what the service accepts. utoipa emits OpenAPI 3.1 schema objects,
//! which are JSON Schema 2020-12; the references are moved from `#/components/schemas/`
//! to `#/$defs/` so the schema stands alone.

use serde_json::{Map, Value};
use utoipa::{PartialSchema, ToSchema};

use super::PreferencesDocument;

/// The standalone JSON Schema (2020-12) of [`PreferencesDocument`].
#[must_use]
pub fn json_schema() -> Value {
    let mut defs = Vec::new();
    <PreferencesDocument as ToSchema>::schemas(&mut defs);
    let mut root =
        serde_json::to_value(<PreferencesDocument as PartialSchema>::schema()).unwrap_or_default();
    let defs: Map<String, Value> = defs
        .into_iter()
        .map(|(name, s)| (name, serde_json::to_value(s).unwrap_or_default()))
        .collect();
    if let Value::Object(map) = &mut root {
        map.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        map.insert("title".into(), "PreferencesDocument".into());
        map.insert("$defs".into(), Value::Object(defs));
    }
    rewrite_refs(&mut root);
    root
}

fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map.iter_mut() {
                if k == "$ref"
                    && let Value::String(r) = inner
                    && let Some(name) = r.strip_prefix("#/components/schemas/")
                {
                    *r = format!("#/$defs/{name}");
                } else {
                    rewrite_refs(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
