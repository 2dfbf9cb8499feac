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
    /// Run the HTTP API, plus the job scheduler and worker unless `--no-worker`.
    Serve(ServeArgs),
    /// Run the job scheduler and worker only (no HTTP API), e.g. as separate replicas.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document and exit.
    Openapi,
    /// Exit 0 when URL answers 200: a container health check (the image has no curl).
    Probe {
        /// A plain-HTTP URL, e.g. http://127.0.0.1:8080/ready.
        #[arg(default_value = "http://127.0.0.1:8080/ready")]
        url: String,
    },
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
    /// Create, list, rotate and revoke service keys.
    #[command(subcommand)]
    ServiceKey(ServiceKeyCommand),
    /// Local development helpers (refused in production and when Clerk is configured).
    #[command(subcommand)]
    Dev(DevCommand),
}

/// `service-key …`
#[derive(Debug, Subcommand)]
pub enum ServiceKeyCommand {
    /// Create a key and print it (once: it cannot be shown again).
    Create {
        /// 1–64 characters of a-z, 0-9, _ and -.
        #[arg(long)]
        name: String,
        /// Comma-separated: tokens:read, tokens:refresh, users:read, preferences:read,
        /// integrations:read, audit:read, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        permissions: Vec<String>,
        /// Comma-separated providers the key may get tokens for (default: every one).
        #[arg(long, value_delimiter = ',')]
        providers: Vec<String>,
        /// Comma-separated scope ceiling: tokens handed to the key carry no other scope
        /// (default: no ceiling).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Lifetime, e.g. 90d, 12h, 30m (default: never expires).
        #[arg(long)]
        expires_in: Option<domain::duration::Span>,
    },
    /// List keys: name, prefix, permissions, limits, created, last use, expiry, status,
    /// the end of a rotation's grace, revoked.
    List,
    /// Revoke a key by name (exits non-zero when there is none).
    Revoke {
        /// The key's name.
        name: String,
    },
    /// Give a key a new secret and print it (once); the old secret keeps working until
    /// the grace period ends.
    Rotate {
        /// The key's name.
        name: String,
        /// How long the old secret keeps working, e.g. 24h, 30m, 0s (at once).
        #[arg(long, default_value = "24h")]
        grace: domain::duration::Span,
    },
}

/// `dev …`
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Print a session token the running development service accepts.
    Token(DevTokenArgs),
    /// Development users.
    #[command(subcommand)]
    User(DevUserCommand),
}

/// `dev user …`
#[derive(Debug, Subcommand)]
pub enum DevUserCommand {
    /// Make a user as Clerk's `user.created` webhook would (prints it as the API shows it).
    Create(DevUserCreateArgs),
}

/// Options of `dev user create`.
#[derive(Debug, clap::Args)]
pub struct DevUserCreateArgs {
    /// The Clerk user id (e.g. user_123): the `sub` of `dev token --sub`.
    #[arg(long)]
    pub sub: String,
    /// The user's email address.
    #[arg(long)]
    pub email: String,
    /// Optional first name.
    #[arg(long)]
    pub first_name: Option<String>,
    /// Optional last name.
    #[arg(long)]
    pub last_name: Option<String>,
}

/// Options of `dev token`.
#[derive(Debug, clap::Args)]
pub struct DevTokenArgs {
    /// The Clerk user id to put in `sub` (e.g. user_123).
    #[arg(long)]
    pub sub: String,
    /// Make the token an admin's.
    #[arg(long)]
    pub admin: bool,
    /// Lifetime of the token.
    #[arg(long, default_value_t = 3600)]
    pub ttl_seconds: u64,
}

/// Options of `serve`.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Do not apply migrations at start (run `user-service migrate` separately).
    #[arg(long)]
    pub no_migrate: bool,
    /// Serve the API only: no job scheduler or worker here (run `user-service worker`).
    #[arg(long)]
    pub no_worker: bool,
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
