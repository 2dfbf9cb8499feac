//! The operator commands of the CLI (everything but `serve`): each opens what it needs
//! with the same configuration as `serve`, does one thing, prints a result, and returns an
//! error (non-zero exit) when it failed.

use anyhow::bail;

use crate::{
    cli::{AuditCommand, KeysCommand},
    config::Config,
    startup,
};

/// `keys status` and `keys rotate`.
///
/// # Errors
/// When the database or the keyring cannot be opened, or a rotation leaves ciphertexts behind.
#[allow(clippy::print_stdout)] // The JSON report is the command's output.
pub async fn keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let app = startup::open_app(config).await?;
    let result = match command {
        KeysCommand::Status => {
            let status = app.key_status().await?;
            println!("{}", serde_json::to_string(&status)?);
            Ok(())
        }
        KeysCommand::Rotate { batch_size } => {
            let report = app
                .rotate_keys(&app::Ctx::system("cli"), batch_size.max(1), None)
                .await?;
            println!("{}", serde_json::to_string(&report)?);
            if report.failed > 0 {
                Err(anyhow::anyhow!(
                    "{} ciphertexts could not be re-encrypted (see the log)",
                    report.failed
                ))
            } else {
                Ok(())
            }
        }
    };
    app.shutdown().await;
    result
}

/// `audit verify`.
///
/// # Errors
/// When the chain is broken (naming the first broken entry) or the database fails.
#[allow(clippy::print_stdout)] // The report is the command's output.
pub async fn audit(config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    let app = startup::open_app(config).await?;
    let AuditCommand::Verify = command;
    let outcome = app.verify_audit_chain().await;
    app.shutdown().await;
    match outcome? {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Err(broken) => bail!(
            "audit chain broken at entry {}: {}",
            broken.id,
            broken.reason
        ),
    }
}
