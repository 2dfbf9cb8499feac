//! `store::bulk` (the seeding tool's `COPY` on Postgres) writes exactly what it is given:
//! awkward text (quotes, commas, newlines, empty against NULL), bytes, JSON and timestamps
//! read back equal; the audit entries are chained as `audit::append` chains them, and an
//! append afterwards continues the same chain. Postgres only: SQLite has no `COPY`.

use chrono::{DateTime, TimeZone as _, Utc};
use sea_orm::{EntityTrait, QueryOrder as _};
use serde_json::json;
use store::{
    Db, DbOptions,
    audit::{self, NewAuditEntry},
    bulk::{Batch, copy_batch},
    entities::{audit_log, integration_tokens, integrations, users},
};
use testkit::{Backend, TestDb};
use uuid::Uuid;

fn hash(id: i64, prev: &str, e: &NewAuditEntry) -> String {
    format!("{id}:{}:{}", prev.len(), e.action)
}

/// Nine nines of nanoseconds: rounding (not cutting) to microseconds would carry into the
/// next second.
fn awkward_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_599, 999_999_999)
        .single()
        .expect("time")
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp(), t.timestamp_subsec_micros() * 1000)
        .single()
        .expect("time")
}

fn entry(user: Uuid, action: &str, at: DateTime<Utc>) -> NewAuditEntry {
    NewAuditEntry {
        occurred_at: at,
        actor_type: "user".to_owned(),
        actor_id: Some("user_\"bulk\"".to_owned()),
        action: action.to_owned(),
        user_id: Some(domain::UserId::from_uuid(user)),
        resource_type: None,
        resource_id: Some(String::new()),
        outcome: "success".to_owned(),
        ip: None,
        user_agent: Some("a, b\nc".to_owned()),
        request_id: None,
        details: json!({"quote": "\"", "nested": {"n": 1}}),
        pii_digest: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_writes_what_it_is_given_and_chains_the_audit() {
    let tdb = TestDb::new(Backend::Postgres).await;
    let db = Db::connect(tdb.url(), None, &DbOptions::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let at = awkward_time();
    let (user, integration) = (Uuid::now_v7(), Uuid::now_v7());
    let mut u = testkit::fixtures::user("user_bulk").row();
    u.id = sea_orm::Set(user);
    let mut u: users::Model = sea_orm::TryIntoModel::try_into_model(u).expect("model");
    u.first_name = Some("Ada \"the\", first\nof her name".to_owned());
    u.last_name = Some(String::new());
    u.email = None;
    u.created_at = at;
    let i: integrations::Model = sea_orm::TryIntoModel::try_into_model(
        testkit::fixtures::integration(user, "google")
            .id(integration)
            .every_column_set()
            .row(),
    )
    .expect("model");
    let token = integration_tokens::Model {
        integration_id: integration,
        kind: "access".to_owned(),
        user_id: user,
        key_version: 7,
        ciphertext: vec![0, 255, b'"', b',', b'\n', b'\\'],
        updated_at: at,
    };
    let batch = Batch {
        users: vec![u.clone()],
        integrations: vec![i.clone()],
        tokens: vec![token.clone()],
        audit: vec![
            entry(user, "user.created", at),
            entry(user, "token.accessed", at),
        ],
    };
    copy_batch(&db, batch, hash).await.expect("copy");

    let w = db.writer();
    let got = users::Entity::find_by_id(user)
        .one(w)
        .await
        .expect("read")
        .expect("user");
    assert_eq!(
        got,
        users::Model {
            created_at: micros(at),
            ..u
        }
    );
    let got = integrations::Entity::find_by_id(integration)
        .one(w)
        .await
        .expect("read");
    assert_eq!(got, Some(i));
    let got = integration_tokens::Entity::find()
        .one(w)
        .await
        .expect("read");
    assert_eq!(
        got,
        Some(integration_tokens::Model {
            updated_at: micros(at),
            ..token
        })
    );

    // One more entry through the service's own append continues the chain.
    audit::append(w, vec![entry(user, "user.updated", at)], hash)
        .await
        .expect("append");
    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(w)
        .await
        .expect("audit");
    assert_eq!(rows.len(), 3);
    let (mut last_id, mut last_hash) = (0, rows[0].prev_hash.clone());
    for r in &rows {
        assert_eq!(r.id, last_id + 1);
        assert_eq!(r.prev_hash, last_hash);
        assert_eq!(
            r.hash,
            format!("{}:{}:{}", r.id, r.prev_hash.len(), r.action)
        );
        assert_eq!(r.occurred_at, micros(at));
        assert_eq!(r.user_agent.as_deref(), Some("a, b\nc"));
        assert_eq!(r.resource_id.as_deref(), Some(""));
        assert_eq!(r.resource_type, None);
        assert_eq!(r.details, json!({"quote": "\"", "nested": {"n": 1}}));
        (last_id, last_hash) = (r.id, r.hash.clone());
    }
    assert_eq!(audit::head(w).await.expect("head"), (last_id, last_hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_is_refused_on_sqlite() {
    let tdb = TestDb::new(Backend::Sqlite).await;
    let db = Db::connect(tdb.url(), None, &DbOptions::default())
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let err = copy_batch(&db, Batch::default(), hash)
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("COPY needs a Postgres database"),
        "{err}"
    );
}
