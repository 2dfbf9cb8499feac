//! Local development auth: with no Clerk configured and outside production, the service
//! signs its own session tokens (RS256, like Clerk) with a key generated on first start and
//! kept under the data folder. `user-service dev token` signs with the same key.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use aws_lc_rs::{
    encoding::{AsDer, PublicKeyX509Der},
    rsa::{KeyPair, KeySize},
    signature::KeyPair as _,
};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::jwks::{KeySet, VerifyKey};

/// The issuer of development tokens.
pub const DEV_ISSUER: &str = "user-service-dev";
/// The key file's name under the data folder.
pub const KEY_FILE: &str = "dev-signing-key.pem";

/// An RSA signing key with its public half (for the JWKS) and a stable `kid`.
pub struct DevSigningKey {
    kid: String,
    encoding: EncodingKey,
    n: Vec<u8>,
    e: Vec<u8>,
    spki_der: Vec<u8>,
    path: Option<PathBuf>,
    created: bool,
}

impl std::fmt::Debug for DevSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevSigningKey")
            .field("kid", &self.kid)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_body(text: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .context("the development signing key file is not valid PEM")
}

impl DevSigningKey {
    /// A new random key, not stored anywhere (tests use it as a fake Clerk's key).
    ///
    /// # Errors
    /// When key generation fails.
    pub fn generate() -> anyhow::Result<Self> {
        Self::from_pem(&generate_pem()?)
    }

    /// Parses a PKCS#8 PEM private key.
    ///
    /// # Errors
    /// When the text is not an RSA PKCS#8 key.
    pub fn from_pem(text: &str) -> anyhow::Result<Self> {
        let der = pem_body(text)?;
        let pair = KeyPair::from_pkcs8(&der)
            .map_err(|e| anyhow::anyhow!("the development signing key is not RSA PKCS#8: {e}"))?;
        let public = pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let spki: PublicKeyX509Der<'_> = public
            .as_der()
            .map_err(|_| anyhow::anyhow!("RSA public key serialization failed"))?;
        let encoding = EncodingKey::from_rsa_pem(text.as_bytes())
            .context("the development signing key cannot sign")?;
        let mut h = Sha256::new();
        h.update(&n);
        h.update(&e);
        let digest = h.finalize();
        let kid = format!("dev-{}", &b64url(&digest)[..16]);
        Ok(Self {
            kid,
            encoding,
            n,
            e,
            spki_der: spki.as_ref().to_vec(),
            path: None,
            created: false,
        })
    }

    /// Loads `data_dir/dev-signing-key.pem`, creating it (mode 0600) on first use.
    ///
    /// # Errors
    /// When the file cannot be read, written or parsed.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        let mut created = false;
        if !path.exists() {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            match write_new_private(&path, &generate_pem()?) {
                Ok(()) => created = true,
                // Another process (serve, `dev token`) created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("writing {}", path.display()));
                }
            }
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut key = Self::from_pem(&text)?;
        key.path = Some(path);
        key.created = created;
        Ok(key)
    }

    /// The key id in tokens and the JWKS.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// True when [`DevSigningKey::load_or_create`] generated the file just now.
    #[must_use]
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// Where the key is kept, when it came from a file.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The public key as a JWK.
    #[must_use]
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url(&self.n),
            "e": b64url(&self.e),
        })
    }

    /// The JWKS document with this one key.
    #[must_use]
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk()] })
    }

    /// The public key as SubjectPublicKeyInfo PEM.
    #[must_use]
    pub fn public_key_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der)
    }

    /// The signing key, for tokens with hand-made headers (tests).
    #[must_use]
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The verification side: this key under its `kid`.
    #[must_use]
    pub fn key_set(&self) -> KeySet {
        KeySet::from_keys([(
            self.kid.clone(),
            VerifyKey::new(
                DecodingKey::from_rsa_raw_components(&self.n, &self.e),
                Algorithm::RS256,
            ),
        )])
    }

    /// Signs `claims` with RS256 and this key's `kid`.
    ///
    /// # Errors
    /// When signing fails.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).context("signing the token")
    }

    /// A session token like Clerk's: `sub`, a fresh `sid`, `iss` = [`DEV_ISSUER`], valid for
    /// `ttl_seconds`; with `admin`, the claim at `admin_claim` (dotted) is `"admin"`.
    ///
    /// # Errors
    /// When signing fails or the RNG fails.
    pub fn session_token(
        &self,
        sub: &str,
        admin: bool,
        ttl_seconds: u64,
        admin_claim: &str,
    ) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let sid = app::random::bytes::<12>()?;
        let mut claims = json!({
            "iss": DEV_ISSUER,
            "sub": sub,
            "sid": format!("sess_dev{}", b64url(&sid).replace(['-', '_'], "x")),
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
        });
        if admin {
            set_path(&mut claims, admin_claim, Value::from("admin"));
        }
        self.sign(&claims)
    }
}

/// A new RSA-2048 private key as PKCS#8 PEM.
fn generate_pem() -> anyhow::Result<String> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let der = pair
        .as_der()
        .map_err(|_| anyhow::anyhow!("RSA key serialization failed"))?;
    Ok(pem("PRIVATE KEY", der.as_ref()))
}

/// Sets `value` at a dotted path, creating objects on the way.
fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = cur else { return };
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return;
        }
        cur = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

#[cfg(unix)]
fn write_new_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_new_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_path_is_created() {
        let mut v = json!({"sub": "x"});
        set_path(&mut v, "metadata.role", Value::from("admin"));
        assert_eq!(v["metadata"]["role"], "admin");
        set_path(&mut v, "role", Value::from("admin"));
        assert_eq!(v["role"], "admin");
    }

    #[test]
    fn key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().expect("dir");
        let a = DevSigningKey::load_or_create(dir.path()).expect("created");
        let b = DevSigningKey::load_or_create(dir.path()).expect("loaded");
        assert_eq!(a.kid(), b.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }
}
