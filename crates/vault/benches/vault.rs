//! Costs behind ADR 0001 and the derived-key cache: seal/open with a cached and an
//! uncached user key, HKDF derivation alone, cipher construction alone, and PBKDF2 with
//! 100k iterations (the seed design's choice) for comparison.
//!
//! Run: `cargo bench --bench vault -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use aes_gcm::aead::AeadInOut as _;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use secrecy::ExposeSecret as _;
use sha2::Sha256;
use uuid::Uuid;
use vault::{Binding, Keyring, TokenKind, Vault, derive_user_key};

/// A typical provider refresh token is 100-250 bytes.
const TOKEN: [u8; 200] = [b't'; 200];
const MASTER: [u8; 32] = [0x5a; 32];

fn binding(user: Uuid) -> Binding<'static> {
    Binding::new(user, "google", TokenKind::Refresh)
}

/// Two vaults over the same keys: one to prepare ciphertexts without warming the
/// other's cache.
fn vaults() -> (Vault, Vault) {
    let ring = Keyring::generate_dev();
    let keys = ring.to_env_value();
    let writer = Vault::with_cache_capacity(ring, 0);
    let reader = Vault::new(Keyring::parse(keys.expose_secret(), None).expect("valid ring"));
    (writer, reader)
}

fn seal_open(c: &mut Criterion) {
    let (writer, vault) = vaults();
    let hot = Uuid::from_u128(1);
    let sealed = vault.seal(&TOKEN, &binding(hot));

    let mut group = c.benchmark_group("vault");
    group.bench_function("seal_200B_cached", |b| {
        b.iter(|| vault.seal(black_box(&TOKEN), &binding(hot)));
    });
    group.bench_function("open_200B_cached", |b| {
        b.iter(|| {
            vault
                .open(black_box(&sealed), &binding(hot))
                .expect("opens")
        });
    });

    // A fresh user every iteration: HKDF + cipher construction + cache insert (and, once
    // the cache is full, an eviction) on every call.
    let mut next = 1_000_000u128;
    group.bench_function("seal_200B_uncached", |b| {
        b.iter(|| {
            next += 1;
            vault.seal(black_box(&TOKEN), &binding(Uuid::from_u128(next)))
        });
    });
    group.bench_function("open_200B_uncached", |b| {
        b.iter_batched(
            || {
                next += 1;
                let user = Uuid::from_u128(next);
                (user, writer.seal(&TOKEN, &binding(user)))
            },
            |(user, sealed)| vault.open(&sealed, &binding(user)).expect("opens"),
            BatchSize::SmallInput,
        );
    });
    // Derivation on every call with no cache at all, to separate moka's miss path
    // (insert, admission, eviction) from HKDF + cipher construction.
    let no_cache = &writer;
    group.bench_function("seal_200B_cache_disabled", |b| {
        b.iter(|| no_cache.seal(black_box(&TOKEN), &binding(hot)));
    });
    let sealed_nc = no_cache.seal(&TOKEN, &binding(hot));
    group.bench_function("open_200B_cache_disabled", |b| {
        b.iter(|| {
            no_cache
                .open(black_box(&sealed_nc), &binding(hot))
                .expect("opens")
        });
    });
    group.finish();
}

fn key_costs(c: &mut Criterion) {
    let user = Uuid::from_u128(7);
    let mut group = c.benchmark_group("kdf");
    group.bench_function("hkdf_sha256_derive_user_key", |b| {
        b.iter(|| derive_user_key(black_box(&MASTER), black_box(&user)));
    });
    // What caching a cipher instead of a raw key saves on every seal/open.
    let key = derive_user_key(&MASTER, &user);
    group.bench_function("aes256gcm_cipher_new", |b| {
        b.iter(|| Aes256Gcm::new(black_box(key.expose_secret()).into()));
    });
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    group.bench_function("aes256gcm_encrypt_200B_prebuilt", |b| {
        b.iter(|| {
            let mut buf = TOKEN;
            cipher
                .encrypt_inout_detached(&[0; 12].into(), b"aad", (&mut buf[..]).into())
                .expect("encrypts")
        });
    });
    group.bench_function("aes256gcm_new_plus_encrypt_200B", |b| {
        b.iter(|| {
            let cipher = Aes256Gcm::new(black_box(key.expose_secret()).into());
            let mut buf = TOKEN;
            cipher
                .encrypt_inout_detached(&[0; 12].into(), b"aad", (&mut buf[..]).into())
                .expect("encrypts")
        });
    });
    // One OS RNG call per seal, for the nonce.
    group.bench_function("getrandom_12B_nonce", |b| {
        b.iter(|| {
            let mut nonce = [0u8; 12];
            getrandom::fill(&mut nonce).expect("rng");
            nonce
        });
    });
    // The seed design: PBKDF2-HMAC-SHA256, 100k iterations, per derivation.
    group.sample_size(10);
    group.bench_function("pbkdf2_hmac_sha256_100k", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(black_box(&MASTER), user.as_bytes(), 100_000, &mut out);
            out
        });
    });
    group.finish();
}

criterion_group!(benches, seal_open, key_costs);
criterion_main!(benches);
