//! Entry point of the `user-service` binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use server::{
    cli::{Cli, Command, ServeArgs},
    config::Config,
    startup, telemetry,
};

/// mimalloc rather than glibc malloc: see the workspace `Cargo.toml` (measured with
/// `scripts/bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    if let Command::Openapi = command {
        return print_openapi();
    }
    // Before the configuration: a health check must not depend on the environment it probes.
    if let Command::Probe { url } = &command {
        return match server::probe::probe(url, std::time::Duration::from_secs(3)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("user-service probe: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut config = match Config::from_env(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("user-service: {e}");
            return ExitCode::from(2);
        }
    };
    // Before the runtime: the OTLP exporter runs on threads of its own.
    let _telemetry = match telemetry::init(&telemetry::Settings::from_config(&config)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("user-service: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("user-service: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve(args) => {
                if args.no_migrate {
                    config.database.run_migrations = false;
                }
                if args.no_worker {
                    config.run_worker = false;
                }
                serve(config).await
            }
            Command::Worker => startup::run_worker(config, startup::shutdown_signal()).await,
            Command::Migrate => migrate(&config).await,
            Command::Keys { command } => server::commands::keys(&config, command).await,
            Command::Audit { command } => server::commands::audit(&config, command).await,
            Command::ServiceKey(cmd) => server::auth::commands::service_key(&config, cmd).await,
            Command::Dev(server::cli::DevCommand::Token(args)) => {
                server::auth::commands::dev_token(&config, &args)
            }
            Command::Dev(server::cli::DevCommand::User(server::cli::DevUserCommand::Create(
                args,
            ))) => server::auth::commands::dev_user_create(&config, args).await,
            Command::Openapi | Command::Probe { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "user-service failed");
            eprintln!("user-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    for name in &config.development_defaults {
        tracing::warn!(
            setting = *name,
            "development default in use; production refuses it"
        );
    }
    let db_url = config.database.redacted_url();
    let application = startup::Application::build(config).await?;
    tracing::info!(addr = %application.local_addr()?, metrics_addr = application.metrics_addr().map(|a| a.to_string()), database = %db_url, version = env!("CARGO_PKG_VERSION"), commit = server::metrics::GIT_COMMIT, "user-service listening");
    application.run_until(startup::shutdown_signal()).await
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = startup::open_database(config).await?;
    db.migrate().await?;
    tracing::info!(database = %config.database.redacted_url(), "migrations applied");
    db.close().await;
    Ok(())
}

#[allow(clippy::print_stdout)] // The document is the command's output.
fn print_openapi() -> ExitCode {
    match serde_json::to_string_pretty(&server::http::openapi_document()) {
        Ok(doc) => {
            println!("{doc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("user-service: {e}");
            ExitCode::FAILURE
        }
    }
}
