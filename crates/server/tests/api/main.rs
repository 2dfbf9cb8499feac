//! API tests: the real router on a real port, one fresh database per test, on SQLite and
//! on Postgres. One test binary with one module per area (faster to link than many).

mod common;
mod errors;
mod health;
mod preferences;
mod shutdown;
