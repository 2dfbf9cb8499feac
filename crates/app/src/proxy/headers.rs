//! Which headers cross the proxy. Hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and
//! every header it names, `Keep-Alive`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
//! `Proxy-*`) belong to one connection and never cross; neither do credentials, in either
//! direction: the caller's (`Authorization`, `Cookie`, `X-API-Key`, `X-User-Id`) must not
//! reach the provider, and the provider's cookies must not reach the caller. `Host` and
//! `Content-Length` are the client library's to set for the new request.

use http::{HeaderMap, HeaderName, header};

/// Our own headers that name the caller or the user.
const OURS: [&str; 3] = ["x-api-key", "x-user-id", "x-account-id"];

/// Headers that end at the proxy, whichever direction.
fn hop_by_hop(name: &HeaderName) -> bool {
    let n = name.as_str();
    matches!(
        n,
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    ) || n.starts_with("proxy-")
}

/// The names a `Connection` header lists (they are hop-by-hop too).
fn listed_in_connection(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

fn copy_without(headers: &HeaderMap, drop: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    let listed = listed_in_connection(headers);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if hop_by_hop(name) || listed.iter().any(|l| l == name.as_str()) || drop(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// What of the caller's request goes on to the provider.
#[must_use]
pub fn outgoing(headers: &HeaderMap) -> HeaderMap {
    copy_without(headers, |name| {
        matches!(
            *name,
            header::AUTHORIZATION | header::COOKIE | header::HOST | header::CONTENT_LENGTH
        ) || OURS.contains(&name.as_str())
    })
}

/// What of the provider's answer goes back to the caller.
#[must_use]
pub fn incoming(headers: &HeaderMap) -> HeaderMap {
    copy_without(headers, |name| {
        matches!(
            *name,
            header::AUTHORIZATION | header::SET_COOKIE | header::COOKIE
        ) || name.as_str() == "set-cookie2"
            || OURS.contains(&name.as_str())
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn credentials_and_hop_by_hop_headers_stay_behind() {
        let h = map(&[
            ("authorization", "Bearer usk_secret"),
            ("x-api-key", "usk_secret"),
            ("x-user-id", "user_1"),
            ("cookie", "__session=abc"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic x"),
            ("host", "us.example"),
            ("content-length", "12"),
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("x-custom", "kept"),
        ]);
        let out = outgoing(&h);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "accept", "x-custom"]);
    }

    #[test]
    fn the_providers_cookies_stay_behind_retry_after_goes_through() {
        let h = map(&[
            ("set-cookie", "sid=1"),
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("retry-after", "7"),
            ("content-type", "application/json"),
            ("content-length", "2"),
        ]);
        let out = incoming(&h);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["retry-after", "content-type", "content-length"]);
    }
}
