//! Verification keys: a [`KeySet`] (kid → parsed key) built once per JWKS fetch, and the
//! remote JWKS of Clerk with its cache rules (API.md "Other fixed points"): fetched at
//! start or first use, refreshed after [`JWKS_TTL`], and an unknown `kid` triggers at most
//! one refetch per [`UNKNOWN_KID_REFETCH_INTERVAL`].
//!
//! The hot path reads an `Arc<KeySet>` under a std `RwLock` held only to clone the `Arc`;
//! fetches are serialized by an async mutex that request handling never waits on unless
//! a fetch is due.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm},
};

use super::AuthFailure;

/// A fetched JWKS is used this long before it is fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(300);
/// An unknown `kid` causes at most one refetch per this interval.
pub const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// The algorithms a session token may use; `none` and HMAC never.
pub const ALLOWED_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
];

/// One parsed verification key.
pub struct VerifyKey {
    key: DecodingKey,
    /// The algorithms this key may verify: the JWK's `alg` when given, else its family's.
    algorithms: Vec<Algorithm>,
}

impl VerifyKey {
    /// A key usable with exactly `alg`.
    #[must_use]
    pub fn new(key: DecodingKey, alg: Algorithm) -> Self {
        Self {
            key,
            algorithms: vec![alg],
        }
    }

    /// The parsed key.
    #[must_use]
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// True when a token signed with `alg` may be verified with this key.
    #[must_use]
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }
}

/// Verification keys by `kid`.
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyKey>,
}

impl KeySet {
    /// A set of the given keys.
    pub fn from_keys(keys: impl IntoIterator<Item = (String, VerifyKey)>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
        }
    }

    /// The key with this id.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&VerifyKey> {
        self.keys.get(kid)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Parses a JWKS, keeping only keys we may verify with: RSA, and EC on P-256, each with
    /// a `kid`; symmetric (`oct`) and other keys are dropped.
    #[must_use]
    pub fn from_jwks(set: &JwkSet) -> Self {
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let family: &[Algorithm] = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => {
                    &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512]
                }
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    &[Algorithm::ES256]
                }
                _ => continue,
            };
            let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
                None => family.to_vec(),
                Some(ka) => match key_algorithm(ka) {
                    Some(a) if family.contains(&a) => vec![a],
                    _ => continue,
                },
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, VerifyKey { key, algorithms });
                }
                Err(e) => tracing::warn!(kid, error = %e, "skipping unusable JWKS key"),
            }
        }
        Self { keys }
    }
}

fn key_algorithm(ka: KeyAlgorithm) -> Option<Algorithm> {
    Some(match ka {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        _ => return None,
    })
}

struct Snapshot {
    keys: Arc<KeySet>,
    fetched_at: Option<Instant>,
}

#[derive(Default)]
struct FetchState {
    last_unknown_kid_refetch: Option<Instant>,
    last_failure: Option<Instant>,
}

/// Clerk's JWKS, fetched over HTTP and cached.
pub struct RemoteJwks {
    url: url::Url,
    client: app::outbound::Outbound,
    current: RwLock<Arc<Snapshot>>,
    fetch: tokio::sync::Mutex<FetchState>,
}

impl RemoteJwks {
    /// A source with nothing fetched yet.
    #[must_use]
    pub fn new(url: url::Url, client: app::outbound::Outbound) -> Self {
        Self {
            url,
            client,
            current: RwLock::new(Arc::new(Snapshot {
                keys: Arc::new(KeySet::default()),
                fetched_at: None,
            })),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, snap: Snapshot) {
        let snap = Arc::new(snap);
        match self.current.write() {
            Ok(mut g) => *g = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
    }

    /// Fetches now (at start). Failures are logged; the next request tries again.
    pub async fn prefetch(&self) {
        let mut state = self.fetch.lock().await;
        self.fetch_into(&mut state).await;
    }

    /// The key set holding `kid`, fetching when due (see the module docs).
    ///
    /// # Errors
    /// `unknown signing key` when no allowed fetch yields `kid`; `signing keys unavailable`
    /// when the JWKS has never been fetched successfully.
    pub async fn key_set_for(&self, kid: &str) -> Result<Arc<KeySet>, AuthFailure> {
        let snap = self.snapshot();
        let fresh = snap.fetched_at.is_some_and(|t| t.elapsed() < JWKS_TTL);
        if fresh && snap.keys.get(kid).is_some() {
            return Ok(snap.keys.clone());
        }
        let mut state = self.fetch.lock().await;
        // Another request may have fetched while this one waited.
        let now_snap = self.snapshot();
        if !Arc::ptr_eq(&now_snap, &snap) && now_snap.keys.get(kid).is_some() {
            return Ok(now_snap.keys.clone());
        }
        let fresh = now_snap.fetched_at.is_some_and(|t| t.elapsed() < JWKS_TTL);
        let recently_failed = state
            .last_failure
            .is_some_and(|t| t.elapsed() < UNKNOWN_KID_REFETCH_INTERVAL);
        let may_fetch = if fresh {
            // The unknown-kid rule: at most one refetch per interval.
            state
                .last_unknown_kid_refetch
                .is_none_or(|t| t.elapsed() >= UNKNOWN_KID_REFETCH_INTERVAL)
        } else {
            // Due by age (or never fetched): do not hammer a JWKS endpoint that just failed.
            !recently_failed
        };
        if may_fetch {
            if fresh {
                state.last_unknown_kid_refetch = Some(Instant::now());
            }
            self.fetch_into(&mut state).await;
        }
        drop(state);
        let snap = self.snapshot();
        if snap.keys.get(kid).is_some() {
            Ok(snap.keys.clone())
        } else if snap.fetched_at.is_none() {
            Err(AuthFailure("signing keys unavailable"))
        } else {
            Err(AuthFailure("unknown signing key"))
        }
    }

    async fn fetch_into(&self, state: &mut FetchState) {
        match self.fetch_once().await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "fetched the Clerk JWKS");
                state.last_failure = None;
                self.replace(Snapshot {
                    keys: Arc::new(keys),
                    fetched_at: Some(Instant::now()),
                });
            }
            Err(e) => {
                state.last_failure = Some(Instant::now());
                tracing::warn!(url = %self.url, error = %e, "fetching the Clerk JWKS failed; keeping the keys already known");
            }
        }
    }

    async fn fetch_once(&self) -> anyhow::Result<KeySet> {
        let request = self.client.http().get(self.url.clone()).build()?;
        let res = self
            .client
            .send("clerk_jwks", request)
            .await?
            .error_for_status()?;
        let set: JwkSet = res.json().await?;
        Ok(KeySet::from_jwks(&set))
    }
}

pub use app::integrations::oauth::client::install_crypto_provider;

/// The outbound client of the JWKS fetch: shorter timeouts than provider calls (5 s per
/// call, 3 s to connect), since a request may be waiting on it.
///
/// # Errors
/// When the TLS configuration cannot be built.
pub fn http_client() -> anyhow::Result<app::outbound::Outbound> {
    Ok(
        app::outbound::Outbound::new(Duration::from_secs(5), Duration::from_secs(3))?
            .with_injector(Arc::new(crate::telemetry::otel::inject_current)),
    )
}
