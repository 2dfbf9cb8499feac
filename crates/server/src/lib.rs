//! user-service: the HTTP API and CLI over the `app` use cases.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connections;
pub mod http;
pub mod keyring;
pub mod metrics;
pub mod probe;
pub mod profiling;
pub mod startup;
pub mod telemetry;
