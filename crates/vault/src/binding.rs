//! Where a ciphertext belongs: the associated data every seal and open authenticates.

use uuid::Uuid;

/// Which kind of secret a ciphertext holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A provider access token.
    Access,
    /// A provider refresh token.
    Refresh,
    /// A PKCE code verifier stored beside an OAuth `state`.
    PkceVerifier,
}

impl TokenKind {
    /// Every kind, for exhaustive tests and tooling.
    pub const ALL: [Self; 3] = [Self::Access, Self::Refresh, Self::PkceVerifier];

    /// The stable name used in associated data (and so part of the ciphertext format:
    /// never rename).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
            Self::PkceVerifier => "pkce_verifier",
        }
    }
}

/// The owner of a ciphertext. Sealing and opening must use the same binding, so a
/// ciphertext copied to another user, provider or token kind fails authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding<'a> {
    /// The user the token belongs to.
    pub user_id: Uuid,
    /// The provider (integration) name, e.g. `"google"`.
    pub provider: &'a str,
    /// What the ciphertext holds.
    pub kind: TokenKind,
}

impl<'a> Binding<'a> {
    /// A binding for `user_id`'s `kind` token at `provider`.
    #[must_use]
    pub const fn new(user_id: Uuid, provider: &'a str, kind: TokenKind) -> Self {
        Self {
            user_id,
            provider,
            kind,
        }
    }

    /// The AES-GCM associated data:
    /// `user_id (16 bytes) | len(provider) (u64 BE) | provider | kind`.
    ///
    /// The length prefix makes the encoding injective (`("ab", k)` never collides with
    /// `("a", "b" + k)`); `kind` needs none because it is last. A u64 prefix means no
    /// provider string is too long to encode, so sealing stays infallible.
    pub(crate) fn associated_data(&self) -> Vec<u8> {
        let provider = self.provider.as_bytes();
        let kind = self.kind.as_str().as_bytes();
        let mut aad = Vec::with_capacity(16 + 8 + provider.len() + kind.len());
        aad.extend_from_slice(self.user_id.as_bytes());
        aad.extend_from_slice(&(provider.len() as u64).to_be_bytes());
        aad.extend_from_slice(provider);
        aad.extend_from_slice(kind);
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_stable() {
        let names: Vec<_> = TokenKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["access", "refresh", "pkce_verifier"]);
    }

    #[test]
    fn associated_data_layout() {
        let user = Uuid::from_u128(0xff);
        let aad = Binding::new(user, "google", TokenKind::Refresh).associated_data();
        let mut expected = user.as_bytes().to_vec();
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 6]);
        expected.extend_from_slice(b"googlerefresh");
        assert_eq!(aad, expected);
    }

    /// Reads the encoding back: if every binding decodes to itself, no two bindings can
    /// share associated data.
    fn decode(aad: &[u8]) -> (Uuid, &str, &str) {
        let user = Uuid::from_slice(&aad[..16]).unwrap();
        let len = usize::try_from(u64::from_be_bytes(aad[16..24].try_into().unwrap())).unwrap();
        let provider = std::str::from_utf8(&aad[24..24 + len]).unwrap();
        let kind = std::str::from_utf8(&aad[24 + len..]).unwrap();
        (user, provider, kind)
    }

    #[test]
    fn encoding_is_injective() {
        let user = Uuid::from_u128(7);
        for provider in ["", "a", "ab", "access", "googlerefresh", "x\0y", "ünïcode"] {
            for kind in TokenKind::ALL {
                let aad = Binding::new(user, provider, kind).associated_data();
                assert_eq!(decode(&aad), (user, provider, kind.as_str()));
            }
        }
        // Shifting bytes between provider and kind changes the data.
        let a = Binding::new(user, "ab", TokenKind::Access).associated_data();
        let b = Binding::new(user, "a", TokenKind::Access).associated_data();
        assert_ne!(a[24..], b[24..]);
    }
}
