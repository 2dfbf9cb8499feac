//! The seed: production-like spreads of rows in the large tables, in one transaction.

use super::*;

/// What the checks look up in the seed.
pub(super) struct Seeded {
    pub(super) user: Uuid,
    /// An audit id in the middle of that user's entries (a second page).
    pub(super) audit_cursor: i64,
}

pub(super) fn key_hash(i: usize) -> String {
    format!("{i:064x}")
}

/// Users with a Google integration (access and refresh token) each, their audit entries,
/// service keys, events with deliveries and job runs, in one transaction.
pub(super) async fn seed(w: &DatabaseConnection, now: DateTime<Utc>) -> Seeded {
    let txn = w.begin().await.expect("begin");
    let mut user_rows = Vec::new();
    let mut integration_rows = Vec::new();
    let mut token_rows = Vec::new();
    for i in 0..USERS {
        let (user, integration) = (Uuid::now_v7(), Uuid::now_v7());
        user_rows.push(user_row(user, i, now));
        integration_rows.push(integration_row(integration, user, i, now));
        for kind in ["access", "refresh"] {
            token_rows.push(integration_tokens::Model {
                integration_id: integration,
                kind: kind.to_owned(),
                user_id: user,
                key_version: 1,
                ciphertext: vec![1; 64],
                updated_at: now,
            });
        }
    }
    let user = user_rows[USERS / 2].id;
    let audit_rows = audit_rows(&user_rows, now);
    let audit_cursor = audit_rows
        .iter()
        .filter(|e| e.user_id == Some(user))
        .nth(AUDIT_PER_USER / 2)
        .expect("entries of the user")
        .id;
    insert_all::<users::Entity, _>(&txn, user_rows).await;
    insert_all::<integrations::Entity, _>(&txn, integration_rows).await;
    insert_all::<integration_tokens::Entity, _>(&txn, token_rows).await;
    insert_all::<audit_log::Entity, _>(&txn, audit_rows).await;
    insert_all::<service_keys::Entity, _>(
        &txn,
        (0..SERVICE_KEYS).map(|i| key_row(i, now)).collect(),
    )
    .await;
    seed_events(&txn, now).await;
    seed_job_runs(&txn, now).await;
    seed_flows(&txn, user, now).await;
    txn.commit().await.expect("commit");
    Seeded { user, audit_cursor }
}

/// Inserts models in batches small enough for either engine's bound-parameter limit.
pub(super) async fn insert_all<E, M>(conn: &impl ConnectionTrait, mut rows: Vec<M>)
where
    E: EntityTrait<Model = M>,
    M: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(500));
        let batch = rows.into_iter().map(|m| m.into_active_model().reset_all());
        E::insert_many(batch)
            .exec_without_returning(conn)
            .await
            .expect("seed");
        rows = rest;
    }
}

pub(super) fn user_row(id: Uuid, i: usize, now: DateTime<Utc>) -> users::Model {
    users::Model {
        id,
        clerk_user_id: format!("user_{i}"),
        email: Some(format!("user{i}@example.com")),
        first_name: Some("Ada".to_owned()),
        last_name: None,
        profile_image_url: None,
        onboarding_completed: true,
        onboarding_step: None,
        onboarding_completed_at: None,
        last_sign_in_at: Some(now),
        clerk_updated_at: None,
        created_at: now - Duration::minutes(i as i64),
        updated_at: now,
        // One in fifty deleted: live filters must not turn into scans.
        deleted_at: (i % 50 == 49).then_some(now),
    }
}

/// Tokens expire over the next day (a sweep ten minutes ahead finds a few); checks
/// happened within the last 15 minutes, one in a hundred never.
pub(super) fn integration_row(
    id: Uuid,
    user_id: Uuid,
    i: usize,
    now: DateTime<Utc>,
) -> integrations::Model {
    let minutes = |m: usize| Duration::minutes(m as i64);
    integrations::Model {
        id,
        user_id,
        provider: "google".to_owned(),
        status: if i.is_multiple_of(20) {
            "refresh_failed"
        } else {
            "active"
        }
        .to_owned(),
        account_id: Some(format!("acct_{i}")),
        account_email: None,
        scopes: json!(["openid", "email"]),
        connected_at: Some(now - minutes(i)),
        expires_at: Some(now + minutes(i % 1440)),
        last_refreshed_at: None,
        last_refresh_attempt_at: None,
        last_checked_at: (!i.is_multiple_of(100)).then(|| now - minutes(i % 14)),
        last_used_at: None,
        last_error: None,
        refresh_failures: 0,
        refresh_lease_until: None,
        refresh_not_before: None,
        created_at: now - minutes(i),
        updated_at: now,
    }
}

/// Entries spread evenly over the past year, oldest first (ids follow time, as appends do),
/// each user's interleaved with everyone else's.
pub(super) fn audit_rows(users: &[users::Model], now: DateTime<Utc>) -> Vec<audit_log::Model> {
    let total = users.len() * AUDIT_PER_USER;
    let step = Duration::days(365) / i32::try_from(total).expect("fits");
    let actions = [
        "token.accessed",
        "user.updated",
        "preferences.updated",
        "token.refreshed",
    ];
    (0..total)
        .map(|n| {
            let u = &users[n % users.len()];
            audit_log::Model {
                id: n as i64 + 1,
                occurred_at: now - step * i32::try_from(total - n).expect("fits"),
                actor_type: "user".to_owned(),
                actor_id: Some(u.clerk_user_id.clone()),
                action: actions[n % actions.len()].to_owned(),
                user_id: Some(u.id),
                resource_type: Some("user".to_owned()),
                resource_id: Some(u.id.to_string()),
                outcome: "success".to_owned(),
                ip: None,
                user_agent: None,
                request_id: None,
                details: json!({}),
                prev_hash: "0".repeat(64),
                hash: "0".repeat(64),
                pii_digest: None,
                pseudonymized_at: None,
            }
        })
        .collect()
}

pub(super) fn key_row(i: usize, now: DateTime<Utc>) -> service_keys::Model {
    service_keys::Model {
        id: Uuid::now_v7(),
        name: format!("service-{i}"),
        key_hash: key_hash(i),
        key_prefix: "usk_test".to_owned(),
        permissions: json!(["tokens:read"]),
        created_at: now,
        last_used_at: None,
        // Revoked keys stay in the table.
        revoked_at: i.is_multiple_of(3).then_some(now),
        providers: None,
        scope_ceiling: None,
        expires_at: None,
        // Some keys were rotated: their previous hash is indexed too.
        previous_key_hash: i.is_multiple_of(5).then(|| key_hash(i + SERVICE_KEYS)),
        previous_valid_until: i.is_multiple_of(5).then_some(now),
    }
}

/// One event per user with one delivery each: all delivered but a few pending, due now.
pub(super) async fn seed_events(conn: &impl ConnectionTrait, now: DateTime<Utc>) {
    let events: Vec<_> = (0..EVENTS)
        .map(|_| event_outbox::Model {
            id: Uuid::now_v7(),
            event_type: "user.updated".to_owned(),
            user_id: None,
            payload: json!({}),
            created_at: now,
        })
        .collect();
    let deliveries = events
        .iter()
        .enumerate()
        .map(|(i, e)| event_deliveries::Model {
            id: i as i64 + 1,
            event_id: e.id,
            subscriber_url: "https://subscriber.test/hook".to_owned(),
            status: if i % 100 == 0 {
                domain::event::DeliveryStatus::Pending.as_str()
            } else {
                domain::event::DeliveryStatus::Delivered.as_str()
            }
            .to_owned(),
            attempts: 1,
            next_attempt_at: now - Duration::seconds(i as i64),
            last_status_code: Some(200),
            last_error: None,
            delivered_at: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    insert_all::<event_outbox::Entity, _>(conn, events).await;
    insert_all::<event_deliveries::Entity, _>(conn, deliveries).await;
}

/// The job's row, and a quarter-hourly job's runs of the past weeks: all succeeded but the
/// newest, pending and due.
pub(super) async fn seed_job_runs(conn: &impl ConnectionTrait, now: DateTime<Utc>) {
    jobs::ensure(conn, JOB, now).await.expect("job");
    let runs = (0..USERS)
        .map(|i| {
            let at = now - Duration::minutes(15 * i as i64);
            let done = i > 0;
            job_runs::Model {
                id: i as i64 + 1,
                job: JOB.to_owned(),
                run_key: at.to_rfc3339(),
                trigger: "schedule".to_owned(),
                status: if done {
                    domain::job::RunStatus::Succeeded.as_str()
                } else {
                    domain::job::RunStatus::Pending.as_str()
                }
                .to_owned(),
                attempts: i32::from(done),
                max_attempts: 3,
                run_after: at,
                locked_until: None,
                last_error: None,
                result: None,
                created_at: at,
                started_at: done.then_some(at),
                finished_at: done.then_some(at),
            }
        })
        .collect();
    insert_all::<job_runs::Entity, _>(conn, runs).await;
}

/// OAuth states started over the past two hours and ten minutes, ten minutes each, oldest
/// first (what an hourly purge with an hour's grace leaves), and a connect session for
/// every other one, which started that flow.
pub(super) async fn seed_flows(conn: &impl ConnectionTrait, user: Uuid, now: DateTime<Utc>) {
    let step = Duration::minutes(130) / i32::try_from(FLOWS).expect("fits");
    let created = |i: usize| now - step * i32::try_from(FLOWS - i).expect("fits");
    let states: Vec<_> = (0..FLOWS)
        .map(|i| oauth_states::Model {
            state_hash: format!("state-{i:08}"),
            user_id: user,
            provider: "google".to_owned(),
            redirect_uri: "https://app.example.com/cb".to_owned(),
            scopes: json!(["openid"]),
            key_version: 1,
            pkce_verifier: vec![1; 64],
            created_at: created(i),
            expires_at: created(i) + Duration::minutes(10),
            used_at: i
                .is_multiple_of(3)
                .then(|| created(i) + Duration::minutes(1)),
        })
        .collect();
    let sessions: Vec<_> = (0..FLOWS)
        .step_by(2)
        .map(|i| connect_sessions::Model {
            session_hash: format!("session-{i:08}"),
            user_id: user,
            provider: "google".to_owned(),
            scopes: None,
            created_at: created(i) - Duration::minutes(1),
            expires_at: created(i) + Duration::minutes(9),
            used_at: Some(created(i)),
            flow_state_hash: Some(format!("state-{i:08}")),
        })
        .collect();
    insert_all::<oauth_states::Entity, _>(conn, states).await;
    insert_all::<connect_sessions::Entity, _>(conn, sessions).await;
}
