//! OAuth with the providers of the catalog: the catalog itself (data, not code) and, as the
//! flow lands, the client that talks to providers.

pub(crate) mod answer;
pub mod catalog;
pub mod client;

pub use catalog::{Catalog, ClientCredentials, Provider, RevokeToken, TokenAuth};

use crate::App;

/// One provider as `GET /providers` lists it: never an endpoint secret, only whether this
/// deployment can connect it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProviderSummary {
    pub name: String,
    pub display_name: String,
    pub default_scopes: Vec<String>,
    pub configured: bool,
}

impl App {
    /// The provider catalog of this deployment.
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Uses `catalog` (built from configuration) instead of the built-in one.
    #[must_use]
    pub fn with_catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = std::sync::Arc::new(catalog);
        self
    }

    /// Uses these redirect URIs for the connect flow.
    #[must_use]
    pub fn with_oauth_settings(mut self, settings: crate::integrations::OAuthSettings) -> Self {
        self.oauth_settings = std::sync::Arc::new(settings);
        self
    }

    /// Sends trace context on every provider call (the binary owns the tracing setup).
    #[must_use]
    pub fn with_trace_injector(mut self, inject: crate::outbound::HeaderInjector) -> Self {
        let outbound = self.oauth_client.outbound().clone().with_injector(inject);
        self.oauth_client = client::OAuthClient::new(outbound);
        self
    }

    pub(crate) fn oauth_settings(&self) -> &crate::integrations::OAuthSettings {
        &self.oauth_settings
    }

    pub(crate) fn oauth_client(&self) -> &client::OAuthClient {
        &self.oauth_client
    }

    /// The catalog as `GET /providers` shows it, by name.
    #[must_use]
    pub fn providers(&self) -> Vec<ProviderSummary> {
        self.catalog
            .iter()
            .map(|p| ProviderSummary {
                name: p.name.clone(),
                display_name: p.display_name.clone(),
                default_scopes: p.default_scopes.clone(),
                configured: p.is_configured(),
            })
            .collect()
    }
}
