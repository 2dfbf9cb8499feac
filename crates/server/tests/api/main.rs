//! API tests: the real router on a real port, one fresh database per test, on SQLite and
//! on Postgres. One test binary with one module per area (faster to link than many).

mod auth;
mod common;
mod dev_auth;
mod errors;
mod health;
mod service_keys;
mod shutdown;
