//! Who acts and from where: every mutating use case takes a [`Ctx`], so its audit entry
//! can name the actor and carry the request's IP, user agent and request id.

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
    pub actor: Actor,
    pub meta: RequestMeta,
}

impl Ctx {
    /// A context for work the service does on its own (jobs, CLI).
    pub fn system(what: impl Into<String>) -> Self {
        Self {
            actor: Actor::system(what),
            meta: RequestMeta::default(),
        }
    }
}
