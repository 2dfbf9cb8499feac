//! The ceiling of `scripts/bench`: a bare axum + sqlx program doing only the essential work
//! of the two measured routes, on the product's own database (same schema, same rows), so
//! the product's throughput can be published as a ratio to it (issue 17, item 3).
//!
//! - `GET /users/me`: RS256 verification of the session token (every request: no cache),
//!   one query for the live user by Clerk id, the user as JSON.
//! - `POST /internal/tokens/get`: the `X-API-Key` hashed and looked up in an in-memory set,
//!   one query (integration joined with its live user and its access token), HKDF-SHA256
//!   of the user's key, AES-256-GCM open, the token as JSON.
//!
//! No middleware, no audit, no metrics, no rate limit, no error documents: whatever the
//! product does beyond this is what the ratio measures.
//!
//! Configuration, from the environment as the product's: `DATABASE_URL`, `LISTEN_ADDR`,
//! `TOKEN_ENCRYPTION_KEYS` (`version:base64`, comma-separated), `DATA_DIR` (where the
//! product's development signing key `dev-signing-key.pem` is).

use std::{collections::HashSet, sync::Arc};

use aes_gcm::{Aes256Gcm, KeyInit, aead::AeadInOut};
use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The issuer of the product's development session tokens.
const DEV_ISSUER: &str = "user-service-dev";
/// The vault's HKDF salt and info prefix (crates/vault/src/derive.rs).
const HKDF_SALT: &[u8] = b"user-service/token-vault/salt/v1";
const HKDF_INFO: &[u8] = b"user-service/token-key/v1";
/// The vault's ciphertext header: format byte, key version (u32 BE), nonce.
const HEADER_LEN: usize = 1 + 4 + 12;

mod db;

struct Ceiling {
    db: db::Pool,
    jwt_key: DecodingKey,
    validation: Validation,
    /// Hex SHA-256 of every unrevoked service key.
    key_hashes: HashSet<String>,
    /// Master keys by version.
    masters: Vec<(u32, [u8; 32])>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).with_context(|| format!("{k} is not set"));
    let db = db::Pool::connect(&env("DATABASE_URL")?).await?;
    let key_hashes = db.service_key_hashes().await?.into_iter().collect();
    let pem = std::fs::read_to_string(
        std::path::Path::new(&env("DATA_DIR")?).join("dev-signing-key.pem"),
    )
    .context("reading the product's development signing key")?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[DEV_ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let state = Arc::new(Ceiling {
        db,
        jwt_key: public_key(&pem)?,
        validation,
        key_hashes,
        masters: masters(&env("TOKEN_ENCRYPTION_KEYS")?)?,
    });
    let app = Router::new()
        .route("/users/me", get(me))
        .route("/internal/tokens/get", post(token))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(env("LISTEN_ADDR")?).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The RSA public key of the product's PKCS#8 development signing key.
fn public_key(pem: &str) -> anyhow::Result<DecodingKey> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body.trim())?;
    let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| anyhow::anyhow!("signing key: {e}"))?;
    use aws_lc_rs::signature::KeyPair as _;
    Ok(DecodingKey::from_rsa_der(pair.public_key().as_ref()))
}

fn masters(keys: &str) -> anyhow::Result<Vec<(u32, [u8; 32])>> {
    keys.split(',')
        .map(|entry| {
            let (v, k) = entry.trim().split_once(':').context("version:key")?;
            let key: [u8; 32] = STANDARD
                .decode(k)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("a key is 32 bytes"))?;
            Ok((v.parse()?, key))
        })
        .collect()
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

async fn me(
    State(s): State<Arc<Ceiling>>,
    headers: HeaderMap,
) -> Result<Json<db::User>, StatusCode> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let claims = jsonwebtoken::decode::<Claims>(token, &s.jwt_key, &s.validation)
        .map_err(|_| StatusCode::UNAUTHORIZED)?
        .claims;
    let user =
        s.db.user(&claims.sub)
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    user.map(Json).ok_or(StatusCode::NOT_FOUND)
}

#[derive(Deserialize)]
struct TokenAsk {
    user_id: String,
    provider: String,
}

#[derive(Serialize)]
struct TokenAnswer {
    access_token: String,
    token_type: &'static str,
    expires_at: Option<DateTime<Utc>>,
    scopes: serde_json::Value,
    provider: String,
    account_email: Option<String>,
    refreshed: bool,
}

async fn token(
    State(s): State<Arc<Ceiling>>,
    headers: HeaderMap,
    Json(ask): Json<TokenAsk>,
) -> Result<Json<TokenAnswer>, StatusCode> {
    let key = headers
        .get("x-api-key")
        .map(|v| v.as_bytes())
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let hash = Sha256::digest(key);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    if !s.key_hashes.contains(&hex) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let row =
        s.db.token(&ask.user_id, &ask.provider)
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?
            .ok_or(StatusCode::NOT_FOUND)?;
    let access_token = s
        .open(&row, &ask.provider)
        .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(Json(TokenAnswer {
        access_token,
        token_type: "Bearer",
        expires_at: row.expires_at,
        scopes: row.scopes,
        provider: ask.provider,
        account_email: row.account_email,
        refreshed: false,
    }))
}

impl Ceiling {
    /// The vault's `open` without its caches: parse the header, derive the user's key
    /// (HKDF-SHA256), AES-256-GCM decrypt with the binding as associated data.
    fn open(&self, row: &db::TokenRow, provider: &str) -> Option<String> {
        let ct = row.ciphertext.as_deref()?;
        if ct.len() < HEADER_LEN + 16 || ct[0] != 1 {
            return None;
        }
        let version = u32::from_be_bytes(ct[1..5].try_into().ok()?);
        let master = &self.masters.iter().find(|(v, _)| *v == version)?.1;
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(HKDF_SALT), master)
            .expand_multi_info(&[HKDF_INFO, row.user_id.as_bytes()], &mut key)
            .ok()?;
        let cipher = Aes256Gcm::new(&key.into());
        let mut aad = Vec::with_capacity(16 + 8 + provider.len() + 6);
        aad.extend_from_slice(row.user_id.as_bytes());
        aad.extend_from_slice(&(provider.len() as u64).to_be_bytes());
        aad.extend_from_slice(provider.as_bytes());
        aad.extend_from_slice(b"access");
        let (body, tag) = ct[HEADER_LEN..].split_at(ct.len() - HEADER_LEN - 16);
        let mut plain = body.to_vec();
        let nonce: &[u8; 12] = ct[5..HEADER_LEN].try_into().ok()?;
        let tag: &[u8; 16] = tag.try_into().ok()?;
        cipher
            .decrypt_inout_detached(nonce.into(), &aad, plain.as_mut_slice().into(), tag.into())
            .ok()?;
        String::from_utf8(plain).ok()
    }
}
