//! Operations: what the health routes report (`health`).

pub mod health;
