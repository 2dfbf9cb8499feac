//! The whole data model of the contract: users, preferences and their history,
//! integrations and their encrypted tokens, OAuth states, processed webhook ids, service
//! keys, the hash-chained audit log and the event outbox.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000001_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        users(m).await?;
        preferences(m).await?;
        integrations(m).await?;
        oauth_states(m).await?;
        webhooks_in(m).await?;
        service_keys(m).await?;
        audit(m).await?;
        outbox(m).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "event_deliveries",
            "event_outbox",
            "audit_chain_head",
            "audit_log",
            "service_keys",
            "webhook_events",
            "oauth_states",
            "integration_tokens",
            "integrations",
            "preference_history",
            "preference_overrides",
            "users",
        ] {
            m.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

fn fk_cascade(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(Alias::new(*c));
    }
    if unique {
        idx.unique();
    }
    m.create_index(idx.to_owned()).await
}

async fn users(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Users::Table)
            .col(pk_uuid(Users::Id))
            .col(string_uniq(Users::ClerkUserId))
            .col(text_null(Users::Email))
            .col(text_null(Users::FirstName))
            .col(text_null(Users::LastName))
            .col(text_null(Users::ProfileImageUrl))
            .col(boolean(Users::OnboardingCompleted).default(false))
            .col(text_null(Users::OnboardingStep))
            .col(timestamp_with_time_zone_null(Users::OnboardingCompletedAt))
            .col(timestamp_with_time_zone_null(Users::LastSignInAt))
            // Clerk's own `updated_at`, to refuse stale webhook events; local edits don't move it.
            .col(timestamp_with_time_zone_null(Users::ClerkUpdatedAt))
            .col(timestamp_with_time_zone(Users::CreatedAt))
            .col(timestamp_with_time_zone(Users::UpdatedAt))
            .col(timestamp_with_time_zone_null(Users::DeletedAt))
            .to_owned(),
    )
    .await?;
    index(m, "idx_users_email", Users::Table, &["email"], false).await?;
    index(
        m,
        "idx_users_deleted_at",
        Users::Table,
        &["deleted_at"],
        false,
    )
    .await?;
    index(
        m,
        "idx_users_created_at",
        Users::Table,
        &["created_at", "id"],
        false,
    )
    .await
}

async fn preferences(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(PreferenceOverrides::Table)
            .col(pk_uuid(PreferenceOverrides::UserId))
            .col(integer(PreferenceOverrides::SchemaVersion))
            .col(big_integer(PreferenceOverrides::Version))
            // Only the user's own values: effective = defaults overlaid with these.
            .col(json_binary(PreferenceOverrides::Overrides))
            .col(timestamp_with_time_zone(PreferenceOverrides::UpdatedAt))
            .foreign_key(&mut fk_cascade(
                (PreferenceOverrides::Table, PreferenceOverrides::UserId),
                (Users::Table, Users::Id),
            ))
            .to_owned(),
    )
    .await?;
    m.create_table(
        Table::create()
            .table(PreferenceHistory::Table)
            .col(big_pk_auto(PreferenceHistory::Id))
            .col(uuid(PreferenceHistory::UserId))
            .col(big_integer(PreferenceHistory::Version))
            .col(integer(PreferenceHistory::SchemaVersion))
            // The RFC 7396 merge patch that made this version, and the overrides after it.
            .col(json_binary(PreferenceHistory::Changes))
            .col(json_binary(PreferenceHistory::Snapshot))
            .col(text(PreferenceHistory::ChangedBy))
            .col(timestamp_with_time_zone(PreferenceHistory::ChangedAt))
            .foreign_key(&mut fk_cascade(
                (PreferenceHistory::Table, PreferenceHistory::UserId),
                (Users::Table, Users::Id),
            ))
            .to_owned(),
    )
    .await?;
    index(
        m,
        "uq_preference_history_user_version",
        PreferenceHistory::Table,
        &["user_id", "version"],
        true,
    )
    .await
}

async fn integrations(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Integrations::Table)
            .col(pk_uuid(Integrations::Id))
            .col(uuid(Integrations::UserId))
            .col(string(Integrations::Provider))
            .col(string(Integrations::Status))
            .col(text_null(Integrations::AccountId))
            .col(text_null(Integrations::AccountEmail))
            .col(json_binary(Integrations::Scopes))
            .col(timestamp_with_time_zone_null(Integrations::ConnectedAt))
            .col(timestamp_with_time_zone_null(Integrations::ExpiresAt))
            .col(timestamp_with_time_zone_null(Integrations::LastRefreshedAt))
            .col(timestamp_with_time_zone_null(
                Integrations::LastRefreshAttemptAt,
            ))
            .col(timestamp_with_time_zone_null(Integrations::LastCheckedAt))
            .col(timestamp_with_time_zone_null(Integrations::LastUsedAt))
            .col(text_null(Integrations::LastError))
            .col(integer(Integrations::RefreshFailures).default(0))
            .col(timestamp_with_time_zone(Integrations::CreatedAt))
            .col(timestamp_with_time_zone(Integrations::UpdatedAt))
            .foreign_key(&mut fk_cascade(
                (Integrations::Table, Integrations::UserId),
                (Users::Table, Users::Id),
            ))
            .to_owned(),
    )
    .await?;
    index(
        m,
        "uq_integrations_user_provider",
        Integrations::Table,
        &["user_id", "provider"],
        true,
    )
    .await?;
    index(
        m,
        "idx_integrations_status",
        Integrations::Table,
        &["status", "provider"],
        false,
    )
    .await?;
    index(
        m,
        "idx_integrations_expires_at",
        Integrations::Table,
        &["expires_at"],
        false,
    )
    .await?;

    m.create_table(
        Table::create()
            .table(IntegrationTokens::Table)
            .col(uuid(IntegrationTokens::IntegrationId))
            .col(uuid(IntegrationTokens::UserId))
            .col(string(IntegrationTokens::Kind))
            .col(integer(IntegrationTokens::KeyVersion))
            // Vault format: 0x01 | key version | nonce | AES-256-GCM ciphertext + tag.
            .col(blob(IntegrationTokens::Ciphertext))
            .col(timestamp_with_time_zone(IntegrationTokens::UpdatedAt))
            .primary_key(
                Index::create()
                    .col(IntegrationTokens::IntegrationId)
                    .col(IntegrationTokens::Kind),
            )
            .foreign_key(&mut fk_cascade(
                (IntegrationTokens::Table, IntegrationTokens::IntegrationId),
                (Integrations::Table, Integrations::Id),
            ))
            .foreign_key(&mut fk_cascade(
                (IntegrationTokens::Table, IntegrationTokens::UserId),
                (Users::Table, Users::Id),
            ))
            .to_owned(),
    )
    .await?;
    index(
        m,
        "idx_integration_tokens_key_version",
        IntegrationTokens::Table,
        &["key_version"],
        false,
    )
    .await?;
    index(
        m,
        "idx_integration_tokens_user",
        IntegrationTokens::Table,
        &["user_id"],
        false,
    )
    .await
}

async fn oauth_states(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(OauthStates::Table)
            // SHA-256 of the state: a copy of the database cannot replay a pending flow.
            .col(string(OauthStates::StateHash).primary_key())
            .col(uuid(OauthStates::UserId))
            .col(string(OauthStates::Provider))
            .col(text(OauthStates::RedirectUri))
            .col(json_binary(OauthStates::Scopes))
            .col(integer(OauthStates::KeyVersion))
            .col(blob(OauthStates::PkceVerifier))
            .col(timestamp_with_time_zone(OauthStates::CreatedAt))
            .col(timestamp_with_time_zone(OauthStates::ExpiresAt))
            .col(timestamp_with_time_zone_null(OauthStates::UsedAt))
            .foreign_key(&mut fk_cascade(
                (OauthStates::Table, OauthStates::UserId),
                (Users::Table, Users::Id),
            ))
            .to_owned(),
    )
    .await?;
    index(
        m,
        "idx_oauth_states_expires_at",
        OauthStates::Table,
        &["expires_at"],
        false,
    )
    .await?;
    index(
        m,
        "idx_oauth_states_key_version",
        OauthStates::Table,
        &["key_version"],
        false,
    )
    .await
}

async fn webhooks_in(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(WebhookEvents::Table)
            .col(string(WebhookEvents::Id).primary_key())
            .col(string(WebhookEvents::Source))
            .col(string(WebhookEvents::EventType))
            .col(string(WebhookEvents::Outcome))
            .col(timestamp_with_time_zone(WebhookEvents::ProcessedAt))
            .to_owned(),
    )
    .await?;
    index(
        m,
        "idx_webhook_events_processed_at",
        WebhookEvents::Table,
        &["processed_at"],
        false,
    )
    .await
}

async fn service_keys(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(ServiceKeys::Table)
            .col(pk_uuid(ServiceKeys::Id))
            .col(string_uniq(ServiceKeys::Name))
            // Hex SHA-256 of the whole key; the key itself is shown once and never stored.
            .col(string_uniq(ServiceKeys::KeyHash))
            .col(string(ServiceKeys::KeyPrefix))
            .col(json_binary(ServiceKeys::Permissions))
            .col(timestamp_with_time_zone(ServiceKeys::CreatedAt))
            .col(timestamp_with_time_zone_null(ServiceKeys::LastUsedAt))
            .col(timestamp_with_time_zone_null(ServiceKeys::RevokedAt))
            .to_owned(),
    )
    .await
}

async fn audit(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(AuditLog::Table)
            // Assigned from the chain head, not auto-incremented: the id is the chain position.
            .col(big_integer(AuditLog::Id).primary_key())
            .col(timestamp_with_time_zone(AuditLog::OccurredAt))
            .col(string(AuditLog::ActorType))
            .col(text_null(AuditLog::ActorId))
            .col(string(AuditLog::Action))
            // No foreign key: entries outlive purged users (their ids are pseudonymized).
            .col(uuid_null(AuditLog::UserId))
            .col(string_null(AuditLog::ResourceType))
            .col(text_null(AuditLog::ResourceId))
            .col(string(AuditLog::Outcome))
            .col(text_null(AuditLog::Ip))
            .col(text_null(AuditLog::UserAgent))
            .col(text_null(AuditLog::RequestId))
            .col(json_binary(AuditLog::Details))
            .col(string(AuditLog::PrevHash))
            .col(string(AuditLog::Hash))
            .to_owned(),
    )
    .await?;
    index(
        m,
        "idx_audit_log_occurred_at",
        AuditLog::Table,
        &["occurred_at"],
        false,
    )
    .await?;
    index(
        m,
        "idx_audit_log_user",
        AuditLog::Table,
        &["user_id", "id"],
        false,
    )
    .await?;
    index(
        m,
        "idx_audit_log_action",
        AuditLog::Table,
        &["action", "id"],
        false,
    )
    .await?;

    // One row: the chain head. Writers update it in their transaction, which serializes
    // appends (row lock on Postgres, the write lock on SQLite) so the chain cannot fork.
    m.create_table(
        Table::create()
            .table(AuditChainHead::Table)
            .col(integer(AuditChainHead::Id).primary_key())
            .col(big_integer(AuditChainHead::LastId))
            .col(string(AuditChainHead::LastHash))
            .to_owned(),
    )
    .await?;
    m.exec_stmt(
        Query::insert()
            .into_table(AuditChainHead::Table)
            .columns([
                AuditChainHead::Id,
                AuditChainHead::LastId,
                AuditChainHead::LastHash,
            ])
            .values_panic([1.into(), 0i64.into(), "0".repeat(64).into()])
            .to_owned(),
    )
    .await
}

async fn outbox(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(EventOutbox::Table)
            .col(pk_uuid(EventOutbox::Id))
            .col(string(EventOutbox::EventType))
            .col(uuid_null(EventOutbox::UserId))
            .col(json_binary(EventOutbox::Payload))
            .col(timestamp_with_time_zone(EventOutbox::CreatedAt))
            .to_owned(),
    )
    .await?;
    index(
        m,
        "idx_event_outbox_created_at",
        EventOutbox::Table,
        &["created_at"],
        false,
    )
    .await?;
    m.create_table(
        Table::create()
            .table(EventDeliveries::Table)
            .col(big_pk_auto(EventDeliveries::Id))
            .col(uuid(EventDeliveries::EventId))
            .col(text(EventDeliveries::SubscriberUrl))
            .col(string(EventDeliveries::Status))
            .col(integer(EventDeliveries::Attempts).default(0))
            .col(timestamp_with_time_zone(EventDeliveries::NextAttemptAt))
            .col(integer_null(EventDeliveries::LastStatusCode))
            .col(text_null(EventDeliveries::LastError))
            .col(timestamp_with_time_zone_null(EventDeliveries::DeliveredAt))
            .col(timestamp_with_time_zone(EventDeliveries::CreatedAt))
            .col(timestamp_with_time_zone(EventDeliveries::UpdatedAt))
            .foreign_key(&mut fk_cascade(
                (EventDeliveries::Table, EventDeliveries::EventId),
                (EventOutbox::Table, EventOutbox::Id),
            ))
            .to_owned(),
    )
    .await?;
    index(
        m,
        "idx_event_deliveries_due",
        EventDeliveries::Table,
        &["status", "next_attempt_at"],
        false,
    )
    .await
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    ClerkUserId,
    Email,
    FirstName,
    LastName,
    ProfileImageUrl,
    OnboardingCompleted,
    OnboardingStep,
    OnboardingCompletedAt,
    LastSignInAt,
    ClerkUpdatedAt,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}
#[derive(DeriveIden)]
enum PreferenceOverrides {
    Table,
    UserId,
    SchemaVersion,
    Version,
    Overrides,
    UpdatedAt,
}
#[derive(DeriveIden)]
enum PreferenceHistory {
    Table,
    Id,
    UserId,
    Version,
    SchemaVersion,
    Changes,
    Snapshot,
    ChangedBy,
    ChangedAt,
}
#[derive(DeriveIden)]
enum Integrations {
    Table,
    Id,
    UserId,
    Provider,
    Status,
    AccountId,
    AccountEmail,
    Scopes,
    ConnectedAt,
    ExpiresAt,
    LastRefreshedAt,
    LastRefreshAttemptAt,
    LastCheckedAt,
    LastUsedAt,
    LastError,
    RefreshFailures,
    CreatedAt,
    UpdatedAt,
}
#[derive(DeriveIden)]
enum IntegrationTokens {
    Table,
    IntegrationId,
    UserId,
    Kind,
    KeyVersion,
    Ciphertext,
    UpdatedAt,
}
#[derive(DeriveIden)]
enum OauthStates {
    Table,
    StateHash,
    UserId,
    Provider,
    RedirectUri,
    Scopes,
    KeyVersion,
    PkceVerifier,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}
#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    Id,
    Source,
    EventType,
    Outcome,
    ProcessedAt,
}
#[derive(DeriveIden)]
enum ServiceKeys {
    Table,
    Id,
    Name,
    KeyHash,
    KeyPrefix,
    Permissions,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}
#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    OccurredAt,
    ActorType,
    ActorId,
    Action,
    UserId,
    ResourceType,
    ResourceId,
    Outcome,
    Ip,
    UserAgent,
    RequestId,
    Details,
    PrevHash,
    Hash,
}
#[derive(DeriveIden)]
enum AuditChainHead {
    Table,
    Id,
    LastId,
    LastHash,
}
#[derive(DeriveIden)]
enum EventOutbox {
    Table,
    Id,
    EventType,
    UserId,
    Payload,
    CreatedAt,
}
#[derive(DeriveIden)]
enum EventDeliveries {
    Table,
    Id,
    EventId,
    SubscriberUrl,
    Status,
    Attempts,
    NextAttemptAt,
    LastStatusCode,
    LastError,
    DeliveredAt,
    CreatedAt,
    UpdatedAt,
}
