//! The command line: one binary, `serve` by default.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// user-service: users, preferences and OAuth connections.
#[derive(Debug, Parser)]
#[command(name = "user-service", version, about)]
pub struct Cli {
    /// A TOML configuration file (the environment still wins over it).
    #[arg(long, global = true, env = "USER_SERVICE_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (and, once jobs exist, the scheduler and worker).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document and exit.
    Openapi,
    /// Token encryption keys: status and rotation.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// `keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the active key version and the stored ciphertexts per version (JSON).
    Status,
    /// Re-encrypt every ciphertext under an old key version with the active key.
    Rotate {
        /// Ciphertexts per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: u64,
    },
}

/// `audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exits non-zero naming the first broken entry.
    Verify,
}

/// Options of `serve`.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Do not apply migrations at start (run `user-service migrate` separately).
    #[arg(long)]
    pub no_migrate: bool,
}
