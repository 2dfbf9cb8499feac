//! A user's provider tokens at rest: sealed by the vault, bound to user, provider and kind
//! (so a ciphertext copied to another row never opens), stored and read back. Used by the
//! connect flow, the token service and revocation.

use domain::UserId;
use secrecy::{ExposeSecret, SecretString};
use store::integrations::Integration;
use vault::{Binding, TokenKind};

use crate::{
    App, AppError,
    integrations::{key_version, oauth::client::TokenSet},
};

impl App {
    /// Seals and stores the access token and, when the answer has one, the refresh token
    /// (an answer without one keeps the stored refresh token).
    pub(crate) async fn store_tokens<C: store::Conn>(
        &self,
        conn: &C,
        user: UserId,
        integration: &Integration,
        tokens: &TokenSet,
    ) -> Result<(), AppError> {
        let put = |kind: TokenKind, secret: &SecretString| {
            let binding = Binding::new(user.as_uuid(), &integration.provider, kind);
            (
                kind,
                self.vault()
                    .seal(secret.expose_secret().as_bytes(), &binding),
            )
        };
        let mut sealed = vec![put(TokenKind::Access, &tokens.access_token)];
        if let Some(r) = &tokens.refresh_token {
            sealed.push(put(TokenKind::Refresh, r));
        }
        for (kind, ct) in sealed {
            store::ciphertexts::put_token(
                conn,
                user.as_uuid(),
                integration.id.into(),
                kind.as_str(),
                key_version(&ct),
                ct,
            )
            .await?;
        }
        Ok(())
    }

    /// A stored token of the integration, opened.
    pub(crate) async fn read_token<C: store::Conn>(
        &self,
        conn: &C,
        user: UserId,
        integration: &Integration,
        kind: TokenKind,
    ) -> Result<Option<SecretString>, AppError> {
        let Some((_, ct)) = store::ciphertexts::get_token(
            conn,
            user.as_uuid(),
            integration.id.into(),
            kind.as_str(),
        )
        .await?
        else {
            return Ok(None);
        };
        self.open_token(user, integration, kind, &ct).map(Some)
    }

    /// A token ciphertext of the integration, opened (bound to user, provider and kind).
    pub(crate) fn open_token(
        &self,
        user: UserId,
        integration: &Integration,
        kind: TokenKind,
        ciphertext: &[u8],
    ) -> Result<SecretString, AppError> {
        let binding = Binding::new(user.as_uuid(), &integration.provider, kind);
        let plain = self
            .vault()
            .open(ciphertext, &binding)
            .map_err(|e| AppError::Internal(format!("{} token: {e}", kind.as_str())))?;
        plain
            .to_secret_string()
            .map_err(|_| AppError::Internal("token is not UTF-8".to_owned()))
    }
}
