//! Clerk session tokens (API.md "Authentication"): RS256/RS384/RS512 and ES256 only, `kid`
//! required, `iss` equal to the configured issuer, `azp` among the authorized parties when
//! those are configured, `exp`/`nbf`/`iat` with 5 s leeway, `sub` (a Clerk user id) and
//! `sid` required. Admin when the claim at the configured dotted path equals `admin`.
//!
//! Verified tokens are cached by their SHA-256 until `min(exp, 60 s)`, so a client sending
//! the same token on every request pays for one signature check per minute.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use domain::user::ClerkUserId;
use jsonwebtoken::{Validation, errors::ErrorKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    AuthFailure, UserPrincipal,
    jwks::{ALLOWED_ALGORITHMS, KeySet, RemoteJwks},
};

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 5;
/// Longest time a verified token is trusted without checking its signature again.
pub const VERIFIED_CACHE_TTL: Duration = Duration::from_secs(60);

/// Where verification keys come from.
pub enum KeySource {
    /// Fixed keys (local development auth).
    Static(Arc<KeySet>),
    /// Clerk's JWKS.
    Remote(RemoteJwks),
}

impl KeySource {
    async fn key_set_for(&self, kid: &str) -> Result<Arc<KeySet>, AuthFailure> {
        match self {
            Self::Static(keys) if keys.get(kid).is_some() => Ok(keys.clone()),
            Self::Static(_) => Err(AuthFailure("unknown signing key")),
            Self::Remote(r) => r.key_set_for(kid).await,
        }
    }
}

#[derive(Clone)]
struct Verified {
    principal: UserPrincipal,
    exp: u64,
    ttl: Duration,
}

struct VerifiedExpiry;

impl moka::Expiry<[u8; 32], Verified> for VerifiedExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Verified,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Verifies session tokens.
pub struct JwtVerifier {
    keys: KeySource,
    issuer: String,
    authorized_parties: Vec<String>,
    admin_claim: Vec<String>,
    verified: Option<moka::sync::Cache<[u8; 32], Verified>>,
}

impl JwtVerifier {
    /// A verifier; `cache` enables the verified-token cache.
    #[must_use]
    pub fn new(
        keys: KeySource,
        issuer: String,
        authorized_parties: Vec<String>,
        admin_claim: &str,
        cache: bool,
    ) -> Self {
        Self {
            keys,
            issuer,
            authorized_parties,
            admin_claim: admin_claim.split('.').map(str::to_owned).collect(),
            verified: cache.then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .expire_after(VerifiedExpiry)
                    .build()
            }),
        }
    }

    /// The key source (startup prefetches a remote JWKS through it).
    #[must_use]
    pub fn keys(&self) -> &KeySource {
        &self.keys
    }

    /// The answer of the verified-token cache for `token`, without any signature check:
    /// `None` when the token must be verified (so the caller can refuse cheaply first).
    #[must_use]
    pub fn cached(&self, token: &str) -> Option<Result<UserPrincipal, AuthFailure>> {
        let cache = self.verified.as_ref()?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let hit = cache.get(&digest)?;
        // The cache TTL already ends at `exp`; checking again keeps expiry exact even if
        // the cache evicts lazily.
        if now_secs() < hit.exp + LEEWAY_SECS {
            return Some(Ok(hit.principal));
        }
        cache.invalidate(&digest);
        Some(Err(AuthFailure("token expired")))
    }

    /// Verifies `token`, answering from the verified-token cache when it can.
    ///
    /// # Errors
    /// The reason the token is refused (never containing the token).
    pub async fn verify(&self, token: &str) -> Result<UserPrincipal, AuthFailure> {
        if let Some(answer) = self.cached(token) {
            return answer;
        }
        let (principal, exp) = self.verify_uncached(token).await?;
        let Some(cache) = &self.verified else {
            return Ok(principal);
        };
        let remaining = (exp + LEEWAY_SECS).saturating_sub(now_secs());
        let ttl = VERIFIED_CACHE_TTL.min(Duration::from_secs(remaining));
        if !ttl.is_zero() {
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            cache.insert(
                digest,
                Verified {
                    principal: principal.clone(),
                    exp,
                    ttl,
                },
            );
        }
        Ok(principal)
    }

    /// Verifies the signature and every claim rule; returns the principal and `exp`.
    ///
    /// # Errors
    /// The reason the token is refused.
    pub async fn verify_uncached(&self, token: &str) -> Result<(UserPrincipal, u64), AuthFailure> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthFailure("malformed token"))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(AuthFailure("algorithm not allowed"));
        }
        let kid = header.kid.ok_or(AuthFailure("token has no kid"))?;
        let keys = self.keys.key_set_for(&kid).await?;
        let key = keys.get(&kid).ok_or(AuthFailure("unknown signing key"))?;
        if !key.allows(header.alg) {
            return Err(AuthFailure("algorithm does not match the signing key"));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
            token,
            key.decoding_key(),
            &validation,
        )
        .map_err(|e| AuthFailure(reason(e.kind())))?;
        self.principal_from(&data.claims)
    }

    fn principal_from(
        &self,
        claims: &serde_json::Map<String, Value>,
    ) -> Result<(UserPrincipal, u64), AuthFailure> {
        let now = now_secs();
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_u64().ok_or(AuthFailure("invalid iat"))?;
            if iat > now + LEEWAY_SECS {
                return Err(AuthFailure("token issued in the future"));
            }
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(AuthFailure("invalid exp"))?;
        if !self.authorized_parties.is_empty() {
            let azp = claims
                .get("azp")
                .and_then(Value::as_str)
                .ok_or(AuthFailure("token has no azp"))?;
            if !self.authorized_parties.iter().any(|p| p == azp) {
                return Err(AuthFailure("azp is not an authorized party"));
            }
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(AuthFailure("token has no sub"))?;
        let clerk_user_id =
            ClerkUserId::parse(sub).map_err(|_| AuthFailure("sub is not a Clerk user id"))?;
        let sid = claims
            .get("sid")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(AuthFailure("token has no sid"))?;
        let admin = claim_at(claims, &self.admin_claim).and_then(Value::as_str) == Some("admin");
        Ok((
            UserPrincipal::new(clerk_user_id, Arc::from(sid), admin),
            exp,
        ))
    }
}

/// The value at a dotted path (`metadata.role` → `claims["metadata"]["role"]`).
fn claim_at<'a>(claims: &'a serde_json::Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(claims.get(first)?, |v, part| v.as_object()?.get(part))
}

fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidSignature => "invalid signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not allowed",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        _ => "malformed token",
    }
}

fn now_secs() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_claims() {
        let claims = serde_json::json!({"metadata": {"role": "admin"}, "role": "user"});
        let map = claims.as_object().expect("object");
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            claim_at(map, &path("metadata.role")),
            Some(&Value::from("admin"))
        );
        assert_eq!(claim_at(map, &path("role")), Some(&Value::from("user")));
        assert_eq!(claim_at(map, &path("metadata.role.x")), None);
        assert_eq!(claim_at(map, &path("nope.role")), None);
    }
}
