//! Where a proxied call goes: the provider's API base joined with the caller's path, and
//! nothing else. The caller controls only the path and the query; scheme, host and port
//! come from the catalog. A path that could leave the base (a `..` or `.` segment, an
//! empty segment as in `//host`, a backslash, an `@`, or any of these percent-encoded,
//! double encoding included) is refused before any connection is made, and the joined URL
//! is parsed again and checked to have the base's origin and path prefix.
//!
//! A base from the built-in catalog must resolve to public addresses only: the proxy is
//! not a way into the service's own network. A base that this deployment's configuration
//! named (`OAUTH_<PROVIDER>_API_BASE_URL`, the operator's catalog file) is trusted as it
//! is: an operator may point it at a local API, and tests do.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Url;

use crate::{AppError, integrations::oauth::catalog::ApiBase};

/// The URL `path` (as sent, percent-encoded) and `query` name under `base`.
///
/// # Errors
/// `InvalidRequest` when the path could leave the base.
pub(crate) fn join(base: &ApiBase, path: &str, query: Option<&str>) -> Result<Url, AppError> {
    check_path(path)?;
    let prefix = base.url.path().trim_end_matches('/');
    let origin = base.url.origin().ascii_serialization();
    let mut raw = format!("{origin}{prefix}/{path}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        if q.contains('#') || q.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(refused("the query string"));
        }
        raw.push('?');
        raw.push_str(q);
    }
    let url = Url::parse(&raw).map_err(|_| refused("the path"))?;
    // Whatever the checks above missed, the parsed URL must still be under the base.
    let same_origin =
        url.origin() == base.url.origin() && url.username().is_empty() && url.password().is_none();
    let under_prefix = url
        .path()
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('/'));
    if same_origin && under_prefix {
        Ok(url)
    } else {
        Err(refused("the path"))
    }
}

fn refused(what: &str) -> AppError {
    AppError::InvalidRequest(format!(
        "{what} must stay under the provider's API base URL (no `.` or `..` segments, empty \
         segments, backslashes, `@` or encoded slashes)"
    ))
}

/// Each `/`-separated segment, raw and decoded, is a plain name.
fn check_path(path: &str) -> Result<(), AppError> {
    if path.is_empty() {
        return Err(refused("the path"));
    }
    for segment in path.split('/') {
        let raw_ok = !segment.is_empty() && segment.bytes().all(allowed_raw);
        let decoded = percent_decode(segment);
        let decoded_ok = decoded.iter().all(|&b| allowed_decoded(b))
            && decoded.as_slice() != b"."
            && decoded.as_slice() != b"..";
        if !(raw_ok && decoded_ok) {
            return Err(refused("the path"));
        }
    }
    Ok(())
}

/// Bytes a raw segment may hold: no `\`, `@`, `#`, `?`, spaces or controls.
fn allowed_raw(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'\\' | b'@' | b'#' | b'?')
}

/// Bytes a decoded segment may hold: additionally no `/` and no `%` (double encoding).
fn allowed_decoded(b: u8) -> bool {
    !(b.is_ascii_control() || matches!(b, b'/' | b'\\' | b'@' | b'%'))
}

/// `%XX` → the byte; anything else as it is (a stray `%` stays and is refused above).
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits are below 256.
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Refuses a built-in base that resolves to a private, loopback or otherwise non-public
/// address; a configured base passes unchecked.
///
/// # Errors
/// `ProviderUnreachable` when the host does not resolve or resolves to such an address.
pub(crate) async fn refuse_private(provider: &str, base: &ApiBase) -> Result<(), AppError> {
    if base.configured {
        return Ok(());
    }
    let unreachable = |why: &str| {
        AppError::ProviderUnreachable(format!("{provider}'s API cannot be reached: {why}"))
    };
    let host = base.url.host_str().unwrap_or_default();
    let port = base.url.port_or_known_default().unwrap_or(443);
    // An IP literal is written in brackets in a URL (`[::1]`); the resolver takes it bare.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|_| unreachable("its host does not resolve"))?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() || !addrs.iter().copied().all(is_public) {
        return Err(unreachable(
            "its host resolves to a non-public address (set OAUTH_<PROVIDER>_API_BASE_URL to allow that)",
        ));
    }
    Ok(())
}

/// Whether `ip` is a public unicast address.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b); // 100.64.0.0/10, carrier-grade NAT
    let reserved = a == 0 || a >= 240; // "this network", and 240.0.0.0/4 with broadcast
    let benchmarking = a == 198 && (b == 18 || b == 19);
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || shared
        || reserved
        || benchmarking)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00; // fc00::/7
    let link_local = first & 0xffc0 == 0xfe80; // fe80::/10
    let documentation = first == 0x2001 && ip.segments()[1] == 0x0db8;
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || unique_local
        || link_local
        || documentation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str) -> ApiBase {
        let mut url = Url::parse(url).expect("url");
        let trimmed = url.path().trim_end_matches('/').to_owned();
        url.set_path(&trimmed);
        ApiBase {
            url,
            configured: false,
        }
    }

    #[test]
    fn plain_paths_join_under_the_base() {
        let g = base("https://www.googleapis.com");
        let u = join(
            &g,
            "gmail/v1/users/me/messages",
            Some("q=is%3Aunread&max=5"),
        )
        .expect("joined");
        assert_eq!(
            u.as_str(),
            "https://www.googleapis.com/gmail/v1/users/me/messages?q=is%3Aunread&max=5"
        );
        let s = base("https://slack.com/api/");
        let u = join(&s, "chat.postMessage", None).expect("joined");
        assert_eq!(u.as_str(), "https://slack.com/api/chat.postMessage");
        // An encoded space or colon is data, not structure.
        let u = join(&g, "drive/v3/files/a%20b%3Ac", None).expect("joined");
        assert_eq!(u.path(), "/drive/v3/files/a%20b%3Ac");
    }

    #[test]
    fn paths_that_could_leave_the_base_are_refused() {
        let s = base("https://slack.com/api");
        for path in [
            "",
            "..",
            "../admin",
            "a/../../admin",
            "a/./b",
            "%2e%2e/admin",
            "%2E%2e/admin",
            ".%2e/admin",
            "%252e%252e/admin",
            "a%2f..%2f..%2fadmin",
            "a%5c..%5cadmin",
            "/evil.test/x",
            "a//b",
            "@evil.test",
            "a@evil.test/x",
            "%40evil.test",
            "a\\b",
            "a b",
            "a%00b",
            "a%0d%0aHost:%20evil",
            "a#frag",
        ] {
            assert!(join(&s, path, None).is_err(), "{path:?} must be refused");
        }
        assert!(join(&s, "ok", Some("a=1#frag")).is_err());
        assert!(join(&s, "ok", Some("a=1\r\nX: y")).is_err());
    }

    #[test]
    fn public_and_private_addresses() {
        for public in ["8.8.8.8", "142.250.0.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
    }

    #[tokio::test]
    async fn a_built_in_base_on_a_private_address_is_refused_a_configured_one_is_not() {
        let mut b = base("http://127.0.0.1:9/api");
        let refused = refuse_private("google", &b).await.expect_err("loopback");
        assert!(matches!(refused, AppError::ProviderUnreachable(_)));
        let b2 = base("http://localhost:9/api");
        assert!(refuse_private("google", &b2).await.is_err());
        b.configured = true;
        refuse_private("google", &b)
            .await
            .expect("configured: trusted");
    }
}
