//! Storage of user-service. Only this crate speaks SQL. The same code runs on SQLite and
//! Postgres; every repository function takes the id its rows are scoped to.
#![forbid(unsafe_code)]

pub mod audit;
pub mod backup;
pub mod bulk;
pub mod ciphertexts;
mod connect;
pub mod connect_sessions;
pub mod entities;
mod error;
pub mod events;
pub mod expired;
pub mod integrations;
pub mod jobs;
pub mod metrics;
pub mod migration;
pub mod preferences;
pub mod service_keys;
mod status;
pub mod token_lookup;
pub mod token_refresh;
mod tx;
mod unique;
pub mod usage;
pub mod users;
pub mod webhook_events;

pub use connect::{Backend, Db, DbOptions};
pub use error::StoreError;
pub use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait,
};
pub use tx::{Conn, Tx};
