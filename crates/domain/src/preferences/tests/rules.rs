//! Every rule of the preferences model, valid and invalid, by path: one table, and a test
//! that the table covers every leaf of the schema.

use serde_json::Value;

use super::*;

/// (path, valid values, invalid values, a fragment of the invalid message).
const RULES: &[(&str, &[&str], &[&str], &str)] = &[
    (
        "ui.theme",
        &[r#""light""#, r#""dark""#, r#""system""#],
        &[r#""purple""#, "1", "null"],
        "",
    ),
    (
        "ui.language",
        &[
            r#""en""#,
            r#""pt-BR""#,
            r#""zh-Hant-TW""#,
            r#""de-CH-1996""#,
        ],
        &[r#""english""#, r#""en_US""#, r#""""#, r#""xx-123456789""#],
        "BCP 47",
    ),
    (
        "ui.timezone",
        &[
            r#""UTC""#,
            r#""Europe/Berlin""#,
            r#""America/Argentina/Buenos_Aires""#,
        ],
        &[r#""Mars/Olympus""#, r#""""#, r#""+02:00""#],
        "IANA",
    ),
    (
        "ui.date_format",
        &[r#""YYYY-MM-DD""#, r#""DD/MM/YYYY""#],
        &[r#""yyyy""#],
        "must be one of",
    ),
    (
        "ui.time_format",
        &[r#""12h""#, r#""24h""#],
        &[r#""13h""#],
        "must be one of 12h, 24h",
    ),
    (
        "ui.density",
        &[r#""compact""#],
        &[r#""tight""#],
        "must be one of comfortable, compact",
    ),
    (
        "notifications.email_enabled",
        &["false", "true"],
        &[r#""yes""#, "1", "null"],
        "boolean",
    ),
    ("notifications.push_enabled", &["false"], &["0"], "boolean"),
    (
        "notifications.in_app_enabled",
        &["false"],
        &[r#""false""#],
        "boolean",
    ),
    (
        "notifications.digest_frequency",
        &[r#""never""#, r#""daily""#],
        &[r#""off""#, r#""hourly""#],
        "must be one of never, daily, weekly",
    ),
    (
        "notifications.quiet_hours.enabled",
        &["true"],
        &["2"],
        "boolean",
    ),
    (
        "notifications.quiet_hours.start",
        &[r#""00:00""#, r#""23:59""#, r#""09:30""#],
        &[
            r#""24:00""#,
            r#""9:30""#,
            r#""12:60""#,
            r#""12:5a""#,
            r#""noon""#,
        ],
        "HH:MM",
    ),
    (
        "notifications.quiet_hours.end",
        &[r#""07:15""#],
        &[r#""7""#],
        "HH:MM",
    ),
    (
        "notifications.marketing_emails",
        &["true"],
        &["[]"],
        "boolean",
    ),
    ("ai.personalization_enabled", &["false"], &["{}"], "boolean"),
    (
        "ai.response_style",
        &[r#""concise""#, r#""detailed""#],
        &[r#""verbose""#],
        "must be one of concise, balanced, detailed",
    ),
    (
        "ai.preferred_model",
        &[r#""gpt-4o""#, r#""claude-3.5:latest""#, "null"],
        &[r#""""#, r#""my model""#, "5"],
        "",
    ),
    ("ai.memory_enabled", &["false"], &[r#""no""#], "boolean"),
    ("ai.data_sharing_consent", &["true"], &["1.5"], "boolean"),
    (
        "integrations.calendar_sync_enabled",
        &["false"],
        &["null"],
        "boolean",
    ),
    (
        "integrations.email_sync_enabled",
        &["false"],
        &[r#""""#],
        "boolean",
    ),
    (
        "integrations.sync_frequency_minutes",
        &["5", "1440", "60"],
        &["4", "1441", "-1", "15.5", r#""15""#],
        "",
    ),
    (
        "integrations.default_calendar_provider",
        &[r#""google""#, r#""microsoft""#, "null"],
        &[
            r#""Google""#,
            r#""""#,
            r#""a b""#,
            r#""aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa""#,
        ],
        "",
    ),
    (
        "privacy.profile_visibility",
        &[r#""team""#, r#""public""#],
        &[r#""friends""#],
        "must be one of private, team, public",
    ),
    (
        "privacy.analytics_opt_in",
        &["true"],
        &[r#""true""#],
        "boolean",
    ),
    (
        "privacy.activity_tracking_enabled",
        &["false"],
        &["0"],
        "boolean",
    ),
    (
        "privacy.data_retention_days",
        &["30", "3650"],
        &["29", "3651", "0"],
        "",
    ),
];

#[test]
fn every_rule_accepts_valid_and_refuses_invalid_values_by_path() {
    for (path, valid, invalid, fragment) in RULES {
        for v in *valid {
            let value: Value = serde_json::from_str(v).unwrap();
            let doc = nested(path, value);
            let o = Overrides::empty().partial_update(&doc);
            assert!(o.is_ok(), "{path} = {v} refused: {:?}", o.err());
        }
        for v in *invalid {
            let value: Value = serde_json::from_str(v).unwrap();
            let errs = errors_of(Overrides::empty().partial_update(&nested(path, value)));
            assert_eq!(errs.len(), 1, "{path} = {v}: {errs:?}");
            assert_eq!(errs[0].0, *path, "{path} = {v}");
            assert!(errs[0].1.contains(fragment), "{path} = {v}: {}", errs[0].1);
        }
    }
    // Every field of the document has a rule above.
    let sources = Overrides::empty().sources();
    let leaves = changed_paths(&sources);
    for leaf in &leaves {
        assert!(
            RULES.iter().any(|(p, ..)| p == leaf),
            "no rule test for {leaf}"
        );
    }
    assert_eq!(leaves.len(), RULES.len());
}
