//! Authentication and authorization. The [`authenticate`] middleware inserts a
//! [`Principal`] into the request's extensions when the credentials are valid, or an
//! [`AuthFailure`] when credentials were sent but are not (public routes keep working with
//! a stale cookie); the extractors in [`extract`] turn those into rights or 401/403. Rate
//! limiting reads the same extensions.
//!
//! Callers are end users with a Clerk session token (or, in local development, one signed
//! by this service: [`dev`]) and back-end services with a service key (`usk_…`).

pub mod commands;
pub mod dev;
pub mod extract;
pub mod failures;
pub mod jwks;
pub mod jwt;
mod middleware;
pub mod origin;
pub mod owned_user;
mod principal;

use std::sync::Arc;

use anyhow::Context as _;

pub use middleware::authenticate;
pub use principal::{AuthFailure, LiveUser, Principal, Refused, ServicePrincipal, UserPrincipal};

use crate::config::Config;
use dev::{DEV_ISSUER, DevSigningKey};
use jwt::{JwtVerifier, KeySource};

/// The authentication setup of a running service: the session-token verifier and, in
/// local development mode, the signing key. Cheap to clone.
#[derive(Clone)]
pub struct Auth(Arc<Inner>);

struct Inner {
    jwt: JwtVerifier,
    dev: Option<DevSigningKey>,
}

impl Auth {
    /// Clerk when `CLERK_JWKS_URL` is set (the JWKS is fetched now; a failure is logged and
    /// retried on first use), else local development auth with a key under the data folder.
    ///
    /// # Errors
    /// In production without Clerk; when the development key cannot be read or written; when
    /// the HTTP client cannot be built.
    pub async fn from_config(config: &Config) -> anyhow::Result<Self> {
        jwks::install_crypto_provider();
        if let Some(url) = &config.clerk.jwks_url {
            let issuer = config
                .clerk
                .issuer
                .clone()
                .context("CLERK_ISSUER must be set with CLERK_JWKS_URL")?;
            let remote = jwks::RemoteJwks::new(url.clone(), jwks::http_client()?);
            remote.prefetch().await;
            return Ok(Self::with_verifier(
                JwtVerifier::new(
                    KeySource::Remote(remote),
                    issuer,
                    config.clerk.authorized_parties.clone(),
                    &config.admin_role_claim,
                    true,
                ),
                None,
            ));
        }
        if !config.is_development() {
            anyhow::bail!("CLERK_JWKS_URL must be set in production");
        }
        let key = DevSigningKey::load_or_create(&config.data_dir)?;
        if key.was_created() {
            tracing::warn!(key_file = %key.path().map(|p| p.display().to_string()).unwrap_or_default(), "generated a development signing key");
        }
        tracing::warn!(
            key_file = %key.path().map(|p| p.display().to_string()).unwrap_or_default(),
            jwks = "/.well-known/jwks.json",
            issuer = DEV_ISSUER,
            "DEVELOPMENT AUTH IS ON: no CLERK_JWKS_URL, so this service accepts session tokens it signs itself; production refuses this. To get in: `user-service dev user create --sub user_123 --email ada@example.com`, then `curl -H \"Authorization: Bearer $(user-service dev token --sub user_123)\" http://<listen_addr>/users/me`"
        );
        Ok(Self::development(key, &config.admin_role_claim))
    }

    /// Local development auth with `key`.
    #[must_use]
    pub fn development(key: DevSigningKey, admin_role_claim: &str) -> Self {
        let verifier = JwtVerifier::new(
            KeySource::Static(Arc::new(key.key_set())),
            DEV_ISSUER.to_owned(),
            Vec::new(),
            admin_role_claim,
            true,
        );
        Self::with_verifier(verifier, Some(key))
    }

    fn with_verifier(jwt: JwtVerifier, dev: Option<DevSigningKey>) -> Self {
        Self(Arc::new(Inner { jwt, dev }))
    }

    /// The session-token verifier.
    #[must_use]
    pub fn jwt(&self) -> &JwtVerifier {
        &self.0.jwt
    }

    /// The development signing key, in local development mode.
    #[must_use]
    pub fn dev_key(&self) -> Option<&DevSigningKey> {
        self.0.dev.as_ref()
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("development", &self.0.dev.is_some())
            .finish_non_exhaustive()
    }
}
