//! Loading the vault's keyring: from `TOKEN_ENCRYPTION_KEYS`, or in development from a key
//! generated once and kept under the data folder (so tokens survive restarts).

use std::{io::Write, path::Path};

use anyhow::Context as _;
use secrecy::ExposeSecret;
use vault::{Keyring, Vault};

use crate::config::Config;

/// The file holding the development keyring, in the `TOKEN_ENCRYPTION_KEYS` format.
pub const DEV_KEY_FILE: &str = "dev-encryption-keys";

/// Builds the vault from the configuration.
///
/// # Errors
/// When the configured keyring is invalid, or the development key cannot be read or written.
pub fn load_vault(config: &Config) -> anyhow::Result<Vault> {
    let keyring = match &config.encryption.keys {
        Some(keys) => Keyring::parse(keys.expose_secret(), config.encryption.active_version)
            .map_err(|e| anyhow::anyhow!("TOKEN_ENCRYPTION_KEYS: {e}"))?,
        None => dev_keyring(&config.data_dir, config.encryption.active_version)?,
    };
    Ok(Vault::new(keyring))
}

fn dev_keyring(data_dir: &Path, active: Option<u32>) -> anyhow::Result<Keyring> {
    let path = data_dir.join(DEV_KEY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return Keyring::parse(text.trim(), active)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let ring = Keyring::generate_dev();
    write_private(&path, ring.to_env_value().expose_secret())?;
    tracing::warn!(path = %path.display(), "generated a development encryption key; set TOKEN_ENCRYPTION_KEYS in production");
    Ok(ring)
}

/// Writes a file readable by its owner only.
///
/// # Errors
/// When the file cannot be created or written.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
