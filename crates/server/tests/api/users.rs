//! Users routes, end to end through real authentication: session tokens signed by the
//! test app's key, service keys created through the app, the admin through the admin role.
//! One file per concept: who may call what, updates, soft delete and restore, search,
//! export.

mod access;
mod export;
mod lifecycle;
mod search;
mod update;

use reqwest::{Method, RequestBuilder};
use testkit::{Backend, fixtures};
use uuid::Uuid;

use crate::common::{TestApp, spawn_app_with};

/// A test app with three callers: Alice and Bob (users, rows inserted by each test) and
/// Root (an admin by role; a session speaks for a live user, so Root's row exists).
struct Users {
    app: TestApp,
    alice: String,
    bob: String,
    admin: String,
}

/// `(action, actor_type, actor_id)` of an audit entry.
type Entry = (String, String, Option<String>);

async fn users_app(backend: Backend, extra: &[(&str, &str)]) -> Users {
    let app = spawn_app_with(backend, extra).await;
    fixtures::user("user_root")
        .insert(app.state.app().test_db().writer())
        .await;
    Users {
        alice: app.user_token("user_alice", false),
        bob: app.user_token("user_bob", false),
        admin: app.user_token("user_root", true),
        app,
    }
}

impl Users {
    /// `method path` with the session token `token`.
    fn req(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(token)
    }

    /// Inserts an active user at onboarding step `welcome`; returns its id.
    async fn insert(&self, clerk: &str, email: &str, first: &str, last: &str) -> Uuid {
        self.insert_at(clerk, email, first, last, fixtures::now())
            .await
    }

    async fn insert_at(
        &self,
        clerk: &str,
        email: &str,
        first: &str,
        last: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Uuid {
        fixtures::user(clerk)
            .email(email)
            .names(first, last)
            .onboarding_step("welcome")
            .at(at)
            .insert(self.app.state.app().test_db().writer())
            .await
    }

    /// The audit entries about `id`, oldest first.
    async fn audit(&self, id: Uuid) -> Vec<Entry> {
        self.app.audit_of(id).await
    }
}

/// An audit entry `action` by the user with Clerk id `who`.
fn by(action: &str, who: &str) -> Entry {
    (action.to_owned(), "user".to_owned(), Some(who.to_owned()))
}
