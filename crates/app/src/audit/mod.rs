//! The audit trail: writing entries (here and the batched `access_log` writer), reading
//! them (`query`), verifying the chain (`verify`), pseudonymizing a purged user's entries
//! (`pseudonymize`) and archiving old ones (`archive`).
//!
//! The audit API every mutating use case calls inside its own transaction, so a change
//! and its entry commit together. Entries are hash-chained over a canonical encoding;
//! `details` pass through one scrubber that removes anything secret-shaped.
//!
//! Pseudonymization (the purge of a user) must not break the chain, so the personal fields
//! (`actor_id`, `user_id`, `resource_id`, `ip`, `user_agent`, `details`) enter the chain
//! hash only through their digest (`pii_digest`, stored with the entry): the v2 hash covers
//! the other fields plus that digest. While an entry is intact, `audit verify` recomputes
//! the digest from the fields too; once it is pseudonymized (`pseudonymized_at` set) the
//! fields are replaced and only the stored digest is chained. What stays provable: that an
//! entry existed at its place with its time, action, outcome and request id, and that its
//! personal fields once hashed to the digest. Entries without a digest (written before it
//! existed) keep the v1 hash over all fields and cannot be pseudonymized. Each
//! pseudonymization is itself a chained entry (`crate::audit::pseudonymize`), without which
//! `audit verify` rejects a pseudonymized entry.

pub mod access_log;
pub mod archive;
pub mod pseudonymize;
pub mod query;
mod verify;

pub use verify::{ChainBreak, ChainReport};

use chrono::{DateTime, SubsecRound, Utc};
use domain::{UserId, audit::AuditAction};
use serde_json::Value;
use sha2::{Digest, Sha256};
use store::{
    Conn,
    audit::{AuditEntry, NewAuditEntry},
};

use crate::{AppError, Ctx};

/// What a use case records.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    pub action: AuditAction,
    /// The user the entry is about.
    pub user_id: Option<UserId>,
    /// E.g. (`integration`, `google`) or (`service_key`, name).
    pub resource: Option<(&'static str, String)>,
    /// `success` or `failure` (or a finer word such as `denied`).
    pub outcome: &'static str,
    /// Non-secret facts; secret-named keys are scrubbed anyway.
    pub details: Value,
}

impl AuditRecord {
    /// A successful `action` about `user_id`, with no details.
    #[must_use]
    pub fn new(action: AuditAction, user_id: Option<UserId>) -> Self {
        Self {
            action,
            user_id,
            resource: None,
            outcome: "success",
            details: Value::Object(Default::default()),
        }
    }

    /// Sets the resource.
    #[must_use]
    pub fn resource(mut self, kind: &'static str, id: impl Into<String>) -> Self {
        self.resource = Some((kind, id.into()));
        self
    }

    /// Sets the details.
    #[must_use]
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn outcome(mut self, outcome: &'static str) -> Self {
        self.outcome = outcome;
        self
    }
}

/// Appends one entry in `conn` (the caller's transaction).
///
/// # Errors
/// When the database fails: the caller's transaction must then roll back.
#[tracing::instrument(name = "app audit.record", skip_all)]
pub async fn record<C: Conn>(conn: &C, ctx: &Ctx, rec: AuditRecord) -> Result<i64, AppError> {
    let ids = store::audit::append(conn, vec![to_entry(ctx, rec, Utc::now())], entry_hash).await?;
    Ok(ids[0])
}

/// Builds the stored form of a record (scrubbed, timestamp at storage precision).
#[must_use]
pub fn to_entry(ctx: &Ctx, rec: AuditRecord, at: DateTime<Utc>) -> NewAuditEntry {
    with_digest(NewAuditEntry {
        // Postgres keeps microseconds: hash exactly what will be read back.
        occurred_at: at.trunc_subsecs(6),
        actor_type: ctx.actor().kind.as_str().to_owned(),
        actor_id: ctx.actor().id.clone(),
        action: rec.action.as_str().to_owned(),
        user_id: rec.user_id,
        resource_type: rec.resource.as_ref().map(|(k, _)| (*k).to_owned()),
        resource_id: rec.resource.map(|(_, id)| id),
        outcome: rec.outcome.to_owned(),
        ip: ctx.meta().ip.clone(),
        user_agent: ctx.meta().user_agent.clone(),
        request_id: ctx.meta().request_id.clone(),
        details: scrub(rec.details),
        pii_digest: None,
    })
}

/// The personal fields of an entry (`NewAuditEntry` or `AuditEntry`: same field names,
/// different crates): the one list behind the digest and the hash.
macro_rules! personal_of {
    ($entry:expr) => {{
        let e = $entry;
        Personal {
            actor_id: e.actor_id.as_deref(),
            user_id: e.user_id,
            resource_id: e.resource_id.as_deref(),
            ip: e.ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
            details: &e.details,
        }
    }};
}

/// Fills in the digest of an entry's personal fields.
pub(crate) fn with_digest(mut e: NewAuditEntry) -> NewAuditEntry {
    let digest = pii_digest(&personal_of!(&e));
    e.pii_digest = Some(digest);
    e
}

/// Key names whose values never enter the audit log, whatever a caller passes.
const SECRET_KEYS: [&str; 12] = [
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "secret",
    "client_secret",
    "password",
    "code",
    "code_verifier",
    "authorization",
    "api_key",
    "key",
];

/// Removes secret-named members (at any depth). The one place this rule is enforced.
#[must_use]
pub fn scrub(details: Value) -> Value {
    match details {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if is_secret_name(&k) {
                        (k, Value::String("[redacted]".to_owned()))
                    } else {
                        (k, scrub(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(scrub).collect()),
        other => other,
    }
}

/// `key`, `api_key`, `Refresh_Token`…: a secret name, or one ending in `_` and a secret name
/// (ASCII case-insensitive). Runs for every member of every audit entry (thousands per
/// second on the token route), so it compares in place instead of building strings.
fn is_secret_name(k: &str) -> bool {
    SECRET_KEYS.iter().any(|s| {
        let Some(at) = k.len().checked_sub(s.len()) else {
            return false;
        };
        k.is_char_boundary(at)
            && k[at..].eq_ignore_ascii_case(s)
            && (at == 0 || k.as_bytes()[at - 1] == b'_')
    })
}

/// The hashed fields of an entry, to append (`NewAuditEntry`) or stored (`AuditEntry`):
/// the two types name them alike, and one projection keeps both hashes over the same list.
macro_rules! fields_of {
    ($entry:expr) => {{
        let e = $entry;
        Fields {
            occurred_at: e.occurred_at,
            actor_type: &e.actor_type,
            action: &e.action,
            resource_type: e.resource_type.as_deref(),
            outcome: &e.outcome,
            request_id: e.request_id.as_deref(),
            personal: personal_of!(e),
        }
    }};
}

/// SHA-256 over the previous hash and a canonical encoding of the entry: fields in a fixed
/// order, each length-prefixed, `details` as JSON with sorted keys. With a `pii_digest`
/// (every entry written now) the personal fields enter only through that digest (v2).
#[must_use]
pub fn entry_hash(id: i64, prev_hash: &str, e: &NewAuditEntry) -> String {
    hash_fields(id, prev_hash, &fields_of!(e), e.pii_digest.as_deref())
}

/// The hash a stored entry should have, given its predecessor's hash (v2 over the stored
/// digest when it has one, v1 over the fields otherwise).
#[must_use]
pub fn stored_hash(e: &AuditEntry, prev_hash: &str) -> String {
    hash_fields(e.id, prev_hash, &stored_fields(e), e.pii_digest.as_deref())
}

/// For an intact (not pseudonymized) v2 entry: true when its personal fields still hash to
/// its stored digest. Pseudonymized and v1 entries answer true (nothing to compare).
#[must_use]
pub fn personal_fields_intact(e: &AuditEntry) -> bool {
    match (&e.pii_digest, e.pseudonymized_at) {
        (Some(d), None) => *d == pii_digest(&stored_fields(e).personal),
        _ => true,
    }
}

/// The digest of an entry's personal fields as they are stored now (for a pseudonymized
/// entry: of the replacements, which its pseudonymization record names).
#[must_use]
pub fn stored_pii_digest(e: &AuditEntry) -> String {
    pii_digest(&stored_fields(e).personal)
}

fn stored_fields(e: &AuditEntry) -> Fields<'_> {
    fields_of!(e)
}

struct Fields<'a> {
    occurred_at: DateTime<Utc>,
    actor_type: &'a str,
    action: &'a str,
    resource_type: Option<&'a str>,
    outcome: &'a str,
    request_id: Option<&'a str>,
    personal: Personal<'a>,
}

/// The fields a purge replaces.
struct Personal<'a> {
    actor_id: Option<&'a str>,
    user_id: Option<UserId>,
    resource_id: Option<&'a str>,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    details: &'a Value,
}

/// Feeds length-prefixed strings into a hasher; `None` is a distinct marker.
fn put(h: &mut Sha256, s: Option<&str>) {
    match s {
        // A length prefix keeps ("ab","c") and ("a","bc") apart; u64::MAX marks "absent".
        Some(s) => {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        None => h.update(u64::MAX.to_be_bytes()),
    }
}

fn pii_digest(p: &Personal<'_>) -> String {
    let mut h = Sha256::new();
    put(&mut h, Some("user-service/audit/pii/v1"));
    put(&mut h, p.actor_id);
    put(&mut h, p.user_id.map(|u| u.to_string()).as_deref());
    put(&mut h, p.resource_id);
    put(&mut h, p.ip);
    put(&mut h, p.user_agent);
    put(&mut h, Some(&p.details.to_string()));
    hex(&h.finalize())
}

fn hash_fields(id: i64, prev_hash: &str, f: &Fields<'_>, digest: Option<&str>) -> String {
    let mut h = Sha256::new();
    let Some(digest) = digest else {
        return hash_v1(&mut h, id, prev_hash, f);
    };
    put(&mut h, Some("user-service/audit/v2"));
    put(&mut h, Some(prev_hash));
    put(&mut h, Some(&id.to_string()));
    put(&mut h, Some(&f.occurred_at.timestamp_micros().to_string()));
    put(&mut h, Some(f.actor_type));
    put(&mut h, Some(f.action));
    put(&mut h, f.resource_type);
    put(&mut h, Some(f.outcome));
    put(&mut h, f.request_id);
    put(&mut h, Some(digest));
    hex(&h.finalize())
}

/// The original encoding, kept so entries written before the digest existed still verify.
fn hash_v1(h: &mut Sha256, id: i64, prev_hash: &str, f: &Fields<'_>) -> String {
    let p = &f.personal;
    put(h, Some("user-service/audit/v1"));
    put(h, Some(prev_hash));
    put(h, Some(&id.to_string()));
    put(h, Some(&f.occurred_at.timestamp_micros().to_string()));
    put(h, Some(f.actor_type));
    put(h, p.actor_id);
    put(h, Some(f.action));
    put(h, p.user_id.map(|u| u.to_string()).as_deref());
    put(h, f.resource_type);
    put(h, p.resource_id);
    put(h, Some(f.outcome));
    put(h, p.ip);
    put(h, p.user_agent);
    put(h, f.request_id);
    // serde_json's map is a BTreeMap here (no preserve_order): keys come out sorted.
    put(h, Some(&p.details.to_string()));
    hex(&h.clone().finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scrub_removes_secret_named_members_at_any_depth() {
        let d = scrub(
            json!({"provider": "google", "access_token": "ya29.x", "nested": {"client_secret": "s", "Refresh_Token": "r", "scopes": ["a"]}, "list": [{"code": "c"}]}),
        );
        let text = d.to_string();
        for secret in ["ya29.x", "\"s\"", "\"r\"", "\"c\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(d["provider"], "google");
        assert_eq!(d["nested"]["scopes"], json!(["a"]));
    }

    #[test]
    fn secret_names_match_whole_or_after_an_underscore() {
        for secret in [
            "key",
            "KEY",
            "api_key",
            "x_Api_Key",
            "refresh_token",
            "Code",
            "a_code",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in [
            "keys",
            "monkey",
            "provider",
            "scopes",
            "barcode",
            "",
            "é_token_x",
            "ké",
        ] {
            assert!(!is_secret_name(plain), "{plain}");
        }
    }
}
