//! Pure types shared by every layer of user-service: typed ids, validated newtypes, the
//! one error-code table. Nothing here does IO or knows another crate of ours.
#![forbid(unsafe_code)]

#[macro_use]
mod names;

pub mod duration;
pub mod error;
pub mod event;
pub mod ids;
pub mod integration;
pub mod job;
pub mod profile;
pub mod text;
pub mod user;
pub mod validation;

pub use error::ErrorCode;
pub use ids::{IntegrationId, ServiceKeyId, UserId};
pub use validation::{FieldError, ValidationErrors, redacted_serde_message};
pub mod audit;
pub mod permission;
pub mod preferences;
