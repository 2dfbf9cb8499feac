//! Authentication and authorization. The authenticate middleware (added with the Clerk
//! verifier) inserts a [`Principal`] into the request's extensions when the credentials
//! are valid, or an [`AuthFailure`] when credentials were sent but are not; extractors turn
//! those into rights or 401/403. Rate limiting reads the same extension.

pub mod owned_user;
mod principal;

pub use principal::{AuthFailure, Principal, ServicePrincipal, UserPrincipal};
