//! Who acts and from where: every mutating use case takes a [`Ctx`], so its audit entry
//! can name the actor and carry the request's IP, user agent and request id. A `Ctx` that
//! names a user or a service key comes only from a capability ([`crate::access`]); work
//! the service does on its own uses [`Ctx::system`].

use domain::audit::Actor;

/// Where a request came from (all optional: jobs and the CLI have none).
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// The context of one use-case call.
#[derive(Clone, Debug)]
pub struct Ctx {
    actor: Actor,
    meta: RequestMeta,
}

impl Ctx {
    /// A context for work the service does on its own (jobs, CLI).
    pub fn system(what: impl Into<String>) -> Self {
        Self::new(Actor::system(what), RequestMeta::default())
    }

    /// A context for `actor`; only this crate names actors (capabilities, webhooks).
    pub(crate) fn new(actor: Actor, meta: RequestMeta) -> Self {
        Self { actor, meta }
    }

    /// Who acts.
    #[must_use]
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Where the request came from.
    #[must_use]
    pub fn meta(&self) -> &RequestMeta {
        &self.meta
    }
}
