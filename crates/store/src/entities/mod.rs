//! SeaORM entities: one module per table, mirroring the migrations.

pub mod audit_archive_anchor;
pub mod audit_chain_head;
pub mod audit_log;
pub mod connect_sessions;
pub mod event_deliveries;
pub mod event_outbox;
pub mod integration_tokens;
pub mod integrations;
pub mod job_runs;
pub mod jobs;
pub mod oauth_states;
pub mod preference_history;
pub mod preference_overrides;
pub mod service_key_revocations;
pub mod service_keys;
pub mod usage_stats;
pub mod users;
pub mod webhook_events;
