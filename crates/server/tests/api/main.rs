//! API tests: the real router on a real port, one fresh database per test, on SQLite and
//! on Postgres. One test binary with one module per area (faster to link than many).

// Shared helpers; each test module uses a different subset of them.
#[allow(dead_code)]
mod accounts;
mod audit;
mod audit_durability;
mod auth;
mod browser;
mod cli;
mod common;
mod connect_page;
mod connected;
mod connections;
mod dev_auth;
mod errors;
mod events;
mod fake_provider;
mod faults;
mod health;
mod inputs;
mod integrations;
mod jobs;
mod metrics;
mod migrations;
mod preferences;
mod principals;
mod probe;
mod problems;
mod providers;
mod proxy;
mod rate_limit;
mod refresh_lease;
mod refresh_races;
mod replica;
mod security;
mod service_key_limits;
mod service_keys;
mod shutdown;
mod signup;
mod tokens;
pub mod traces;
mod users;
mod webhooks;
