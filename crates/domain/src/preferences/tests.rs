//! Tests of the preferences model: every rule valid and invalid, inheritance, merge patch
//! and PUT semantics, migrations, import/export and the generated schema.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// Every rule of the model, valid and invalid, by path.
mod rules;

fn errors_of(r: Result<Overrides, crate::ValidationErrors>) -> Vec<(String, String)> {
    match r {
        Ok(o) => panic!("expected errors, got {:?}", o.to_value()),
        Err(e) => e.0.into_iter().map(|f| (f.field, f.message)).collect(),
    }
}

/// Builds `{"a": {"b": v}}` from `a.b`.
fn nested(path: &str, v: Value) -> Value {
    path.rsplit('.').fold(v, |acc, k| json!({ k: acc }))
}

#[test]
fn builtin_defaults_are_the_contract() {
    let expected = json!({
        "ui": {"theme": "system", "language": "en", "timezone": "UTC", "date_format": "YYYY-MM-DD", "time_format": "24h", "density": "comfortable"},
        "notifications": {"email_enabled": true, "push_enabled": true, "in_app_enabled": true, "digest_frequency": "weekly",
                          "quiet_hours": {"enabled": false, "start": "22:00", "end": "07:00"}, "marketing_emails": false},
        "ai": {"personalization_enabled": true, "response_style": "balanced", "preferred_model": null, "memory_enabled": true, "data_sharing_consent": false},
        "integrations": {"calendar_sync_enabled": true, "email_sync_enabled": true, "sync_frequency_minutes": 15, "default_calendar_provider": null},
        "privacy": {"profile_visibility": "private", "analytics_opt_in": false, "activity_tracking_enabled": true, "data_retention_days": 365}
    });
    let builtin = serde_json::to_value(Preferences::builtin()).unwrap();
    assert_eq!(builtin, expected);
    // The trusted literals pass the same validation as user input, unchanged.
    let as_overrides = Overrides::from_value(&builtin).unwrap();
    assert_eq!(as_overrides.to_value(), expected);
}

#[test]
fn range_and_enum_messages_name_the_allowed_values() {
    let errs = errors_of(Overrides::empty().partial_update(
        &json!({"ui": {"theme": "purple"}, "integrations": {"sync_frequency_minutes": 2}, "privacy": {"data_retention_days": 9999}}),
    ));
    assert!(errs.contains(&(
        "ui.theme".into(),
        "must be one of light, dark, system".into()
    )));
    assert!(errs.contains(&(
        "integrations.sync_frequency_minutes".into(),
        "must be between 5 and 1440".into()
    )));
    assert!(errs.contains(&(
        "privacy.data_retention_days".into(),
        "must be between 30 and 3650".into()
    )));
}

#[test]
fn unknown_keys_are_refused_with_their_path_and_all_errors_come_at_once() {
    let errs = errors_of(Overrides::empty().apply_merge_patch(&json!({
        "bogus": 1,
        "ui": {"colour": "red", "theme": "nope"},
        "notifications": {"quiet_hours": {"begin": "10:00"}},
        "privacy": 5,
    })));
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    for f in [
        "bogus",
        "ui.colour",
        "ui.theme",
        "notifications.quiet_hours.begin",
        "privacy",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    assert!(errs.contains(&("ui.colour".into(), "is not a known field".into())));
    assert!(errs.contains(&("privacy".into(), "must be an object".into())));
    // Unknown keys are refused even when the patch only removes them.
    let errs = errors_of(Overrides::empty().apply_merge_patch(&json!({"ui": {"colour": null}})));
    assert_eq!(errs[0].0, "ui.colour");
    // A document that is not an object.
    let errs = errors_of(Overrides::empty().apply_merge_patch(&json!([1])));
    assert_eq!(errs[0].0, "preferences");
}

#[test]
fn values_are_stored_in_canonical_form() {
    let o = Overrides::empty()
        .partial_update(&json!({"ui": {"timezone": "europe/berlin", "language": "EN-us"}}))
        .unwrap();
    assert_eq!(
        o.to_value(),
        json!({"ui": {"timezone": "Europe/Berlin", "language": "en-US"}})
    );
}

#[test]
fn partial_update_keeps_untouched_fields() {
    let o = Overrides::empty()
        .partial_update(&json!({"ui": {"theme": "dark", "density": "compact"}, "privacy": {"analytics_opt_in": true}}))
        .unwrap();
    let o = o
        .partial_update(&json!({"ui": {"theme": "light"}}))
        .unwrap();
    assert_eq!(
        o.to_value(),
        json!({"ui": {"theme": "light", "density": "compact"}, "privacy": {"analytics_opt_in": true}})
    );
    let eff = o.effective(&Preferences::builtin());
    assert_eq!(eff.ui.theme, Theme::Light);
    assert_eq!(eff.ui.density, Density::Compact);
    assert!(eff.privacy.analytics_opt_in);
    assert_eq!(eff.ui.timezone.as_str(), "UTC");
}

#[test]
fn merge_patch_null_falls_back_to_the_default() {
    let o = Overrides::empty()
        .apply_merge_patch(&json!({"ui": {"theme": "dark"}, "ai": {"preferred_model": "gpt-4o"}}))
        .unwrap();
    let o = o
        .apply_merge_patch(&json!({"ui": {"theme": null}}))
        .unwrap();
    assert_eq!(o.to_value(), json!({"ai": {"preferred_model": "gpt-4o"}}));
    assert_eq!(o.effective(&Preferences::builtin()).ui.theme, Theme::System);
    // A whole group removed with one null.
    let o = o.apply_merge_patch(&json!({"ai": null})).unwrap();
    assert!(o.is_empty());
}

#[test]
fn put_null_pins_a_nullable_field_and_refuses_others() {
    let o = Overrides::empty()
        .partial_update(&json!({"ai": {"preferred_model": null}}))
        .unwrap();
    assert_eq!(o.to_value(), json!({"ai": {"preferred_model": null}}));
    // The pinned null survives a system default that names a model.
    let defaults = defaults_with(&json!({"ai": {"preferred_model": "house-model"}})).unwrap();
    assert_eq!(o.effective(&defaults).ai.preferred_model, None);
    assert_eq!(
        Overrides::empty()
            .effective(&defaults)
            .ai
            .preferred_model
            .map(|m| m.to_string()),
        Some("house-model".to_owned())
    );
    let errs = errors_of(Overrides::empty().partial_update(&json!({"ui": {"theme": null}})));
    assert_eq!(errs[0].0, "ui.theme");
    let errs = errors_of(Overrides::empty().partial_update(&json!({"ui": null})));
    assert_eq!(errs[0], ("ui".into(), "must be an object".into()));
}

#[test]
fn a_changed_system_default_reaches_only_users_without_an_override() {
    let defaults =
        defaults_with(&json!({"ui": {"theme": "dark"}, "privacy": {"data_retention_days": 90}}))
            .unwrap();
    let untouched = Overrides::empty();
    let chose_light = Overrides::empty()
        .partial_update(&json!({"ui": {"theme": "light"}}))
        .unwrap();
    assert_eq!(untouched.effective(&defaults).ui.theme, Theme::Dark);
    assert_eq!(chose_light.effective(&defaults).ui.theme, Theme::Light);
    assert_eq!(
        chose_light
            .effective(&defaults)
            .privacy
            .data_retention_days
            .get(),
        90
    );
    // Configured defaults are validated like user input.
    let err = defaults_with(&json!({"ui": {"theme": "neon"}, "extra": {}})).unwrap_err();
    let fields: Vec<_> = err.0.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["extra", "ui.theme"]);
}

#[test]
fn sources_mark_the_users_fields() {
    let o = Overrides::empty()
        .partial_update(
            &json!({"ui": {"theme": "dark"}, "notifications": {"quiet_hours": {"start": "21:00"}}}),
        )
        .unwrap();
    let s = o.sources();
    assert_eq!(s["ui"]["theme"], "user");
    assert_eq!(s["ui"]["language"], "default");
    assert_eq!(s["notifications"]["quiet_hours"]["start"], "user");
    assert_eq!(s["notifications"]["quiet_hours"]["end"], "default");
    assert_eq!(s["privacy"]["data_retention_days"], "default");
}

#[test]
fn reset_removes_all_or_one_category() {
    let o = Overrides::empty()
        .partial_update(&json!({"ui": {"theme": "dark"}, "ai": {"memory_enabled": false}}))
        .unwrap();
    assert_eq!(
        o.reset(Some(Category::Ui)).to_value(),
        json!({"ai": {"memory_enabled": false}})
    );
    assert!(o.reset(None).is_empty());
    assert_eq!("privacy".parse::<Category>(), Ok(Category::Privacy));
    assert!(
        "colors"
            .parse::<Category>()
            .unwrap_err()
            .contains("must be one of ui, notifications")
    );
}

#[test]
fn diff_is_the_merge_patch_between_two_versions() {
    let a = Overrides::empty()
        .partial_update(&json!({"ui": {"theme": "dark", "density": "compact"}, "ai": {"memory_enabled": false}}))
        .unwrap();
    let b = a
        .apply_merge_patch(&json!({"ui": {"theme": "light", "density": null}, "ai": null, "privacy": {"analytics_opt_in": true}}))
        .unwrap();
    let d = a.diff(&b);
    assert_eq!(
        d,
        json!({"ui": {"theme": "light", "density": null}, "ai": {"memory_enabled": null}, "privacy": {"analytics_opt_in": true}})
    );
    assert_eq!(a.apply_merge_patch(&d).unwrap(), b);
    assert_eq!(
        changed_paths(&d),
        [
            "ai.memory_enabled",
            "privacy.analytics_opt_in",
            "ui.density",
            "ui.theme"
        ]
    );
    assert_eq!(a.diff(&a), json!({}));
}

#[test]
fn v0_documents_migrate_to_v1() {
    let v0 = json!({"ui": {"dark_mode": true, "language": "fr"}, "notifications": {"digest": "off", "email_enabled": false}});
    let v1 = migrate(v0, 0).unwrap();
    assert_eq!(
        v1,
        json!({"ui": {"theme": "dark", "language": "fr"}, "notifications": {"digest_frequency": "never", "email_enabled": false}})
    );
    assert!(Overrides::from_value(&v1).is_ok());
    assert_eq!(
        migrate(json!({"ui": {"dark_mode": false}}), 0).unwrap(),
        json!({"ui": {"theme": "light"}})
    );
    assert_eq!(
        migrate(json!({"notifications": {"digest": "daily"}}), 0).unwrap(),
        json!({"notifications": {"digest_frequency": "daily"}})
    );
    // Current documents pass through unchanged.
    let cur = json!({"ui": {"theme": "system"}});
    assert_eq!(migrate(cur.clone(), CURRENT_SCHEMA_VERSION).unwrap(), cur);
    // Broken old values and future versions are named.
    let e = migrate(
        json!({"ui": {"dark_mode": "yes"}, "notifications": {"digest": "hourly"}}),
        0,
    )
    .unwrap_err();
    let fields: Vec<_> = e.0.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["ui.dark_mode", "notifications.digest"]);
    assert_eq!(
        migrate(json!({}), 2).unwrap_err().0[0].field,
        "schema_version"
    );
}

#[test]
fn export_import_round_trip_and_v0_import() {
    let o = Overrides::empty()
        .partial_update(&json!({"ui": {"theme": "dark"}, "ai": {"preferred_model": null}, "integrations": {"sync_frequency_minutes": 30}}))
        .unwrap();
    let export = serde_json::to_value(PreferencesExport::new(&o, chrono::Utc::now())).unwrap();
    assert_eq!(export["schema_version"], CURRENT_SCHEMA_VERSION);
    assert_eq!(import(&export).unwrap(), o);

    let v0 = json!({"schema_version": 0, "preferences": {"ui": {"dark_mode": false}, "notifications": {"digest": "weekly"}}});
    let imported = import(&v0).unwrap();
    assert_eq!(
        imported.to_value(),
        json!({"ui": {"theme": "light"}, "notifications": {"digest_frequency": "weekly"}})
    );

    let bad = json!({"schema_version": 1, "preferences": {"ui": {"theme": "neon"}}});
    assert_eq!(import(&bad).unwrap_err().0[0].field, "preferences.ui.theme");
    let unknown = json!({"schema_version": 1, "preferences": {}, "extra": true});
    assert_eq!(import(&unknown).unwrap_err().0[0].field, "document");
    let future = json!({"schema_version": 9, "preferences": {}});
    assert_eq!(import(&future).unwrap_err().0[0].field, "schema_version");
}

#[test]
fn json_schema_is_generated_from_the_types() {
    let schema = json_schema();
    let text = schema.to_string();
    assert!(!text.contains("#/components/"), "unresolved refs: {text}");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let defs = schema["$defs"].as_object().unwrap();
    // Every $ref points at a definition.
    for r in text.split("\"$ref\":\"#/$defs/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(defs.contains_key(name), "missing $defs/{name}");
    }
    assert_eq!(defs["Theme"]["enum"], json!(["light", "dark", "system"]));
    assert_eq!(defs["SyncFrequencyMinutes"]["minimum"], 5);
    assert_eq!(defs["DataRetentionDays"]["maximum"], 3650);
    assert_eq!(defs["UiPreferences"]["additionalProperties"], false);
    let ui_props = defs["UiPreferences"]["properties"].as_object().unwrap();
    for f in [
        "theme",
        "language",
        "timezone",
        "date_format",
        "time_format",
        "density",
    ] {
        assert!(ui_props.contains_key(f), "ui.{f} missing from the schema");
    }
    assert!(text.contains("schema_version"));
}

/// A strategy for one valid merge patch over a few fields, with nulls (removals) mixed in.
fn valid_patch() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        prop::sample::select(vec!["light", "dark", "system"]).prop_map(|v| ("ui.theme", json!(v))),
        prop::sample::select(vec!["en", "de-AT", "ja"]).prop_map(|v| ("ui.language", json!(v))),
        prop::sample::select(vec!["UTC", "Asia/Tokyo", "America/New_York"])
            .prop_map(|v| ("ui.timezone", json!(v))),
        any::<bool>().prop_map(|v| ("notifications.email_enabled", json!(v))),
        (0u32..24, 0u32..60).prop_map(|(h, m)| (
            "notifications.quiet_hours.start",
            json!(format!("{h:02}:{m:02}"))
        )),
        prop::option::of(prop::sample::select(vec!["gpt-4o", "local"]))
            .prop_map(|v| ("ai.preferred_model", json!(v))),
        (5i64..=1440).prop_map(|v| ("integrations.sync_frequency_minutes", json!(v))),
        (30i64..=3650).prop_map(|v| ("privacy.data_retention_days", json!(v))),
        prop::sample::select(vec!["ui", "notifications", "ai"]).prop_map(|c| (c, Value::Null)),
    ];
    prop::collection::vec(leaf, 1..6).prop_map(|leaves| {
        let mut patch = json!({});
        for (path, v) in leaves {
            let mut cur = &mut patch;
            let parts: Vec<&str> = path.split('.').collect();
            for p in &parts[..parts.len() - 1] {
                if !cur[*p].is_object() {
                    cur[*p] = json!({});
                }
                cur = &mut cur[*p];
            }
            cur[parts[parts.len() - 1]] = v;
        }
        patch
    })
}

proptest! {
    #[test]
    fn any_valid_patches_then_reset_yield_the_defaults(patches in prop::collection::vec(valid_patch(), 0..12)) {
        let defaults = Preferences::builtin();
        let mut o = Overrides::empty();
        for p in &patches {
            let before = o.clone();
            o = o.apply_merge_patch(p).unwrap();
            // The stored diff replays exactly.
            prop_assert_eq!(&before.apply_merge_patch(&before.diff(&o)).unwrap(), &o);
        }
        // Overrides always stay valid as a stored document.
        prop_assert_eq!(&Overrides::from_value(&o.to_value()).unwrap(), &o);
        let mut by_category = o.clone();
        for c in Category::ALL {
            by_category = by_category.reset(Some(*c));
        }
        prop_assert_eq!(&by_category.effective(&defaults), &defaults);
        prop_assert_eq!(o.reset(None).effective(&defaults), defaults);
    }
}
