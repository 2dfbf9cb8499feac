//! The auth commands of the CLI: `service-key create|list|revoke|rotate`, `dev token` and
//! `dev user create`. They read the same configuration as `serve`.

use anyhow::Context as _;
use app::{
    Ctx,
    service_keys::{KeyOptions, ServiceKeyInfo},
};

use super::dev::DevSigningKey;
use crate::{
    cli::{DevTokenArgs, DevUserCreateArgs, ServiceKeyCommand},
    config::Config,
    startup,
};

/// Longest lifetime `dev token` signs.
const MAX_DEV_TTL_SECONDS: u64 = 30 * 24 * 3600;

/// Runs a `service-key` subcommand.
///
/// # Errors
/// Invalid input, an unknown name on revoke or rotate, or a database failure.
#[allow(clippy::print_stdout)] // The listing and the new key are the command's output.
pub async fn service_key(config: &Config, cmd: ServiceKeyCommand) -> anyhow::Result<()> {
    let app = open_migrated_app(config).await?;
    let ctx = Ctx::system("cli");
    let result = match cmd {
        ServiceKeyCommand::Create {
            name,
            permissions,
            providers,
            scopes,
            expires_in,
        } => {
            let options = KeyOptions {
                providers,
                scopes,
                expires_in,
            };
            app.create_limited_service_key(&ctx, &name, &permissions, options)
                .await
                .map(|created| {
                    println!("{}", created.key.expose_secret());
                    eprintln!(
                        "Created service key {:?} ({}) with permissions {}{}.\nStore it now: it cannot be shown again.",
                        created.info.name,
                        created.info.prefix,
                        perms(&created.info.permissions),
                        limits_note(&created.info),
                    );
                })
        }
        ServiceKeyCommand::List => app.list_service_keys().await.map(|keys| print_keys(&keys)),
        ServiceKeyCommand::Revoke { name } => app
            .revoke_service_key(&ctx, &name)
            .await
            .map(|k| eprintln!("Revoked service key {:?} ({}).", k.name, k.prefix)),
        ServiceKeyCommand::Rotate { name, grace } => app
            .rotate_service_key(&ctx, &name, grace)
            .await
            .map(|rotated| {
                println!("{}", rotated.key.expose_secret());
                eprintln!(
                    "Rotated service key {:?}: new secret {}; the old one works until {}.\nStore it now: it cannot be shown again.",
                    rotated.info.name,
                    rotated.info.prefix,
                    time(Some(rotated.old_valid_until)),
                );
            }),
    };
    app.shutdown().await;
    result.map_err(|e| anyhow::anyhow!("{e}"))
}

/// The listing: one line per key, `-` for none. STATUS is `active`, `expired` or
/// `revoked`; GRACE UNTIL is when a rotated-out secret stops working.
#[allow(clippy::print_stdout)] // The listing is the command's output.
fn print_keys(keys: &[ServiceKeyInfo]) {
    let now = chrono::Utc::now();
    println!(
        "{:<24} {:<14} {:<40} {:<20} {:<40} {:<20} {:<20} {:<20} {:<8} {:<20} REVOKED",
        "NAME",
        "PREFIX",
        "PERMISSIONS",
        "PROVIDERS",
        "SCOPES",
        "CREATED",
        "LAST USED",
        "EXPIRES",
        "STATUS",
        "GRACE UNTIL"
    );
    for k in keys {
        println!(
            "{:<24} {:<14} {:<40} {:<20} {:<40} {:<20} {:<20} {:<20} {:<8} {:<20} {}",
            k.name,
            k.prefix,
            perms(&k.permissions),
            list(k.limits.providers.as_deref()),
            list(k.limits.scopes.as_deref()),
            time(Some(k.created_at)),
            time(k.last_used_at),
            time(k.expires_at),
            k.status(now).as_str(),
            time(k.grace_until(now)),
            time(k.revoked_at),
        );
    }
}

/// `, limited to …, expiring …` for a new key with limits or an expiry.
fn limits_note(k: &ServiceKeyInfo) -> String {
    let mut note = String::new();
    if let Some(p) = k.limits.providers.as_deref() {
        note.push_str(&format!(", providers {}", list(Some(p))));
    }
    if let Some(s) = k.limits.scopes.as_deref() {
        note.push_str(&format!(", scope ceiling {}", list(Some(s))));
    }
    if k.expires_at.is_some() {
        note.push_str(&format!(", expiring {}", time(k.expires_at)));
    }
    note
}

fn list(items: Option<&[String]>) -> String {
    items.map_or_else(|| "-".to_owned(), |i| i.join(","))
}

/// The app of a CLI command that writes: migrated first when configured, as `serve` is.
async fn open_migrated_app(config: &Config) -> anyhow::Result<app::App> {
    let app = startup::open_app(config).await?;
    if config.database.run_migrations {
        app.storage()
            .migrate()
            .await
            .context("applying database migrations")?;
    }
    Ok(app)
}

fn perms(p: &[domain::permission::Permission]) -> String {
    p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// Prints a development session token for `args.sub`.
///
/// # Errors
/// In production or with Clerk configured; an invalid `sub` or lifetime; key file errors.
#[allow(clippy::print_stdout)] // The token is the command's output.
pub fn dev_token(config: &Config, args: &DevTokenArgs) -> anyhow::Result<()> {
    require_dev_mode(config, "dev token")?;
    domain::user::ClerkUserId::parse(&args.sub)
        .map_err(|e| anyhow::anyhow!("--sub {e} (a Clerk user id such as user_123)"))?;
    if args.ttl_seconds == 0 || args.ttl_seconds > MAX_DEV_TTL_SECONDS {
        anyhow::bail!("--ttl-seconds must be between 1 and {MAX_DEV_TTL_SECONDS}");
    }
    let key = DevSigningKey::load_or_create(&config.data_dir)?;
    if key.was_created() {
        eprintln!(
            "note: generated a development signing key at {}",
            key.path()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    let token = key.session_token(
        &args.sub,
        args.admin,
        args.ttl_seconds,
        &config.admin_role_claim,
    )?;
    println!("{token}");
    Ok(())
}

/// The `dev` commands work only in local development mode.
fn require_dev_mode(config: &Config, what: &str) -> anyhow::Result<()> {
    if !config.is_development() {
        anyhow::bail!("{what} is refused in production");
    }
    if config.clerk.jwks_url.is_some() {
        anyhow::bail!(
            "{what} is refused: CLERK_JWKS_URL is set, so the service accepts only Clerk's tokens"
        );
    }
    Ok(())
}

/// Makes a development user as a `user.created` webhook would, and prints it as the API
/// shows it. A user that exists already is printed unchanged (exit 0, with a note).
///
/// # Errors
/// In production or with Clerk configured; invalid input; a database failure.
#[allow(clippy::print_stdout)] // The user is the command's output.
pub async fn dev_user_create(config: &Config, args: DevUserCreateArgs) -> anyhow::Result<()> {
    require_dev_mode(config, "dev user create")?;
    let user = dev_user(args)?;
    let app = open_migrated_app(config).await?;
    let result = app.dev_create_user(&Ctx::system("cli"), user).await;
    app.shutdown().await;
    let user = match result.map_err(|e| anyhow::anyhow!("{e}"))? {
        app::users::signup::Provisioned::Created(u) => u,
        app::users::signup::Provisioned::Existing(u) => {
            eprintln!(
                "note: user {} exists already; nothing changed",
                u.clerk_user_id
            );
            u
        }
    };
    let resource = crate::http::user_json::UserResource::from(user);
    println!("{}", serde_json::to_string_pretty(&resource)?);
    Ok(())
}

fn dev_user(args: DevUserCreateArgs) -> anyhow::Result<app::users::signup::DevUser> {
    use domain::{profile::PersonName, user::ClerkUserId, user::Email};
    let name = |flag: &str, v: Option<String>| {
        v.map(|n| PersonName::parse(&n).map_err(|e| anyhow::anyhow!("--{flag} {e}")))
            .transpose()
    };
    Ok(app::users::signup::DevUser {
        clerk_user_id: ClerkUserId::parse(&args.sub)
            .map_err(|e| anyhow::anyhow!("--sub {e} (a Clerk user id such as user_123)"))?,
        email: Email::parse(&args.email).map_err(|e| anyhow::anyhow!("--email {e}"))?,
        first_name: name("first-name", args.first_name)?,
        last_name: name("last-name", args.last_name)?,
    })
}
