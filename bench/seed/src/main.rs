//! `seed --users N [--database-url URL]`: N users, each with a Google integration (access
//! and refresh token sealed by the real vault under `TOKEN_ENCRYPTION_KEYS`, so token
//! hand-outs work) and ten audit entries, straight into a migrated database (migrations
//! are applied first). On Postgres `COPY` (`store::bulk`), 10 000 users per transaction;
//! on SQLite multi-row inserts, 100 users per transaction. The audit entries are chained
//! by the store with the service's own `entry_hash`, so the chain stays valid and
//! `user-service audit verify` passes.
//!
//! Clerk ids are `user_seed_<i>`; run it once per database (ids would collide).
//!
//! `seed --measure --users N --database-url URL` seeds nothing: it times the hot reads on
//! a database seeded with N users (see `measure`).

mod measure;

use std::time::Instant;

use anyhow::Context as _;
use chrono::{Duration, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, TransactionTrait};
use serde_json::json;
use store::{
    Db, DbOptions,
    audit::NewAuditEntry,
    bulk::Batch,
    entities::{integration_tokens, integrations, users},
};
use uuid::Uuid;
use vault::{Binding, Keyring, TokenKind, Vault};

/// Users per transaction: every statement stays under SQLite's and Postgres' bound-parameter
/// limits (audit entries: 17 columns × 10 × 100).
const BATCH: usize = 100;
/// Users per `COPY` transaction on Postgres: each COPY is a round trip with its own
/// acknowledgement, so small batches spend their time waiting, not writing.
const COPY_BATCH: usize = 10_000;
const AUDIT_PER_USER: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (users, url, measure) = args()?;
    if measure {
        let db = Db::connect(&url, None, &DbOptions::default()).await?;
        return measure::run(&db, users).await;
    }
    let users = users.context(USAGE)?;
    let keys =
        std::env::var("TOKEN_ENCRYPTION_KEYS").context("TOKEN_ENCRYPTION_KEYS is not set")?;
    let vault = Vault::new(Keyring::parse(&keys, None).map_err(|e| anyhow::anyhow!("{e}"))?);
    let db = Db::connect(&url, None, &DbOptions::default()).await?;
    db.migrate().await?;
    let started = Instant::now();
    let copy = db.backend() == store::Backend::Postgres;
    let step = if copy { COPY_BATCH } else { BATCH };
    for first in (0..users).step_by(step) {
        let rows = rows(&vault, first..(first + step).min(users))?;
        if copy {
            store::bulk::copy_batch(&db, rows, app::audit::entry_hash).await?;
        } else {
            insert(&db, rows).await?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "seeded {users} users, {users} integrations, {} audit entries in {secs:.1} s",
        users * AUDIT_PER_USER
    );
    db.close().await;
    Ok(())
}

const USAGE: &str = "usage: seed [--measure] --users N [--database-url URL]";

fn args() -> anyhow::Result<(Option<usize>, String, bool)> {
    let mut users = None;
    let mut measure = false;
    let mut url = std::env::var("DATABASE_URL").ok();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--users" => users = Some(it.next().context("--users N")?.parse()?),
            "--database-url" => url = Some(it.next().context("--database-url URL")?),
            "--measure" => measure = true,
            other => anyhow::bail!("unknown argument {other}; {USAGE}"),
        }
    }
    Ok((
        users,
        url.context("--database-url or DATABASE_URL")?,
        measure,
    ))
}

/// The rows of users `range`: each with a Google integration, its two sealed tokens and
/// ten audit entries.
fn rows(vault: &Vault, range: std::ops::Range<usize>) -> anyhow::Result<Batch> {
    let now = Utc::now();
    let mut b = Batch::default();
    for i in range {
        let (user, integration) = (Uuid::now_v7(), Uuid::now_v7());
        b.users.push(user_row(user, i, now));
        b.integrations
            .push(integration_row(integration, user, i, now));
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            let ct = vault.seal(
                format!("seed-{}-{i}", kind.as_str()).as_bytes(),
                &Binding::new(user, "google", kind),
            );
            b.tokens.push(integration_tokens::Model {
                integration_id: integration,
                kind: kind.as_str().to_owned(),
                user_id: user,
                key_version: i32::try_from(vault.active_version())?,
                ciphertext: ct,
                updated_at: now,
            });
        }
        for n in 0..AUDIT_PER_USER {
            b.audit.push(audit_entry(user, i, n, now));
        }
    }
    Ok(b)
}

/// Multi-row inserts in one transaction (SQLite).
async fn insert(db: &Db, b: Batch) -> anyhow::Result<()> {
    let txn = db.writer().begin().await?;
    users::Entity::insert_many(
        b.users
            .into_iter()
            .map(|m| m.into_active_model().reset_all()),
    )
    .exec_without_returning(&txn)
    .await?;
    integrations::Entity::insert_many(
        b.integrations
            .into_iter()
            .map(|m| m.into_active_model().reset_all()),
    )
    .exec_without_returning(&txn)
    .await?;
    integration_tokens::Entity::insert_many(
        b.tokens
            .into_iter()
            .map(|m| m.into_active_model().reset_all()),
    )
    .exec_without_returning(&txn)
    .await?;
    store::audit::append(&txn, b.audit, app::audit::entry_hash).await?;
    txn.commit().await?;
    Ok(())
}

fn user_row(id: Uuid, i: usize, now: chrono::DateTime<Utc>) -> users::Model {
    users::Model {
        id,
        clerk_user_id: format!("user_seed_{i}"),
        email: Some(format!("seed{i}@example.com")),
        first_name: Some("Seed".to_owned()),
        last_name: Some(format!("{i}")),
        profile_image_url: None,
        onboarding_completed: true,
        onboarding_step: None,
        onboarding_completed_at: Some(now),
        last_sign_in_at: Some(now),
        clerk_updated_at: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

/// Expiries spread over the next day, checks over the last 15 minutes: the work lists see
/// what a running service leaves behind.
fn integration_row(
    id: Uuid,
    user_id: Uuid,
    i: usize,
    now: chrono::DateTime<Utc>,
) -> integrations::Model {
    let minutes = |m: usize| Duration::minutes(i64::try_from(m).unwrap_or(0));
    integrations::Model {
        id,
        user_id,
        provider: "google".to_owned(),
        status: "active".to_owned(),
        account_id: Some(format!("acct_{i}")),
        account_email: Some(format!("seed{i}@gmail.example")),
        scopes: json!(["openid", "email", "profile"]),
        connected_at: Some(now),
        expires_at: Some(now + minutes(60 + i % 1440)),
        last_refreshed_at: None,
        last_refresh_attempt_at: None,
        last_checked_at: Some(now - minutes(i % 15)),
        last_used_at: None,
        last_error: None,
        refresh_failures: 0,
        refresh_lease_until: None,
        refresh_not_before: None,
        created_at: now,
        updated_at: now,
    }
}

fn audit_entry(user: Uuid, i: usize, n: usize, now: chrono::DateTime<Utc>) -> NewAuditEntry {
    let actions = [
        "user.created",
        "preferences.updated",
        "integration.connected",
        "token.accessed",
    ];
    NewAuditEntry {
        // Spread over the past year, as a year of retention would leave them.
        occurred_at: now - Duration::days(i64::try_from(36 * n).unwrap_or(0)),
        actor_type: "user".to_owned(),
        actor_id: Some(format!("user_seed_{i}")),
        action: actions[n % actions.len()].to_owned(),
        user_id: Some(domain::UserId::from_uuid(user)),
        resource_type: Some("user".to_owned()),
        resource_id: Some(user.to_string()),
        outcome: "success".to_owned(),
        ip: None,
        user_agent: None,
        request_id: None,
        details: json!({ "seed": n }),
        pii_digest: None,
    }
}
