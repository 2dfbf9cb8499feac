//! Users routes, end to end on the real router. Until the `auth` branch (token verification)
//! is merged, callers are established by a test-only layer in front of the real router that
//! puts the `Principal` named by an `x-test-principal` header into the request, exactly
//! where the authenticate middleware puts it; everything behind it is the production code.

use std::{collections::HashSet, sync::Arc};

use axum::{extract::Request, middleware::Next, response::Response};
use chrono::{Duration, SubsecRound, Utc};
use domain::{ServiceKeyId, permission::Permission, user::ClerkUserId};
use reqwest::Method;
use serde_json::{Value, json};
use server::auth::{Principal, ServicePrincipal, UserPrincipal};
use store::{
    audit::AuditFilter,
    users::{self, Deleted, User},
};
use testkit::{Backend, TestDb, both_backends};
use uuid::Uuid;

use crate::{
    common::{assert_problem, test_config},
    webhooks::credentials_of_db,
};

both_backends!(
    users_access_matrix,
    users_update_validates_and_refuses_read_only_fields,
    users_soft_delete_restore_and_retention,
    users_search_paginates_without_duplicates,
    users_export_contains_everything,
);

/// A running app whose callers are set by `x-test-principal`:
/// `user:<clerk id>[:admin]` or `service:<name>:<perm,perm>`.
struct Harness {
    base: String,
    client: reqwest::Client,
    state: server::http::AppState,
    _server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _db: TestDb,
}

async fn test_principal(mut req: Request, next: Next) -> Response {
    let spec = req
        .headers()
        .get("x-test-principal")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(spec) = spec {
        // Permissions contain `:`: the third part is the rest.
        let parts: Vec<&str> = spec.splitn(3, ':').collect();
        let p = match parts.as_slice() {
            ["user", id, rest @ ..] => Principal::User(UserPrincipal {
                clerk_user_id: ClerkUserId::parse(id).expect("clerk id"),
                session_id: Arc::from("sess_test"),
                admin: rest.first() == Some(&"admin"),
            }),
            ["service", name, perms] => Principal::Service(ServicePrincipal {
                key_id: ServiceKeyId::new(),
                name: Arc::from(*name),
                permissions: perms
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| Permission::parse(p).expect("permission"))
                    .collect(),
            }),
            _ => panic!("bad x-test-principal {spec}"),
        };
        req.extensions_mut().insert(p);
    }
    next.run(req).await
}

async fn harness(backend: Backend, extra: &[(&str, &str)]) -> Harness {
    let db = TestDb::new(backend).await;
    let application = server::startup::Application::build(test_config(&db, extra))
        .await
        .expect("builds");
    let state = application.state().clone();
    drop(application);
    let router =
        server::http::router(state.clone()).layer(axum::middleware::from_fn(test_principal));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(server::startup::serve(
        listener,
        router,
        state.clone(),
        std::future::pending::<()>(),
    ));
    Harness {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        state,
        _server: server,
        _db: db,
    }
}

impl Harness {
    fn req(&self, method: reqwest::Method, path: &str, who: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .header("x-test-principal", who)
    }

    async fn insert(&self, clerk: &str, email: &str, first: &str, last: &str) -> User {
        let at = Utc::now().trunc_subsecs(6);
        self.insert_at(clerk, email, first, last, at).await
    }

    async fn insert_at(
        &self,
        clerk: &str,
        email: &str,
        first: &str,
        last: &str,
        at: chrono::DateTime<Utc>,
    ) -> User {
        users::insert(
            self.state.app().db().writer(),
            User {
                id: Uuid::now_v7(),
                clerk_user_id: clerk.to_owned(),
                email: Some(email.to_owned()),
                first_name: Some(first.to_owned()),
                last_name: Some(last.to_owned()),
                profile_image_url: None,
                onboarding_completed: false,
                onboarding_step: Some("welcome".to_owned()),
                onboarding_completed_at: None,
                last_sign_in_at: None,
                clerk_updated_at: None,
                created_at: at,
                updated_at: at,
                deleted_at: None,
            },
        )
        .await
        .expect("insert user")
    }

    async fn audit(&self, id: Uuid) -> Vec<(String, String, Option<String>)> {
        let f = AuditFilter {
            user_id: Some(id),
            ..AuditFilter::default()
        };
        let mut v: Vec<_> = store::audit::list(self.state.app().db().writer(), &f, 100)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| (e.action, e.actor_type, e.actor_id))
            .collect();
        v.reverse();
        v
    }
}

const A: &str = "user:user_alice";
const B: &str = "user:user_bob";
const ADMIN: &str = "user:user_root:admin";

async fn users_access_matrix(backend: Backend) {
    let h = harness(backend, &[]).await;
    h.insert("user_alice", "alice@example.com", "Alice", "A")
        .await;
    let bob = h.insert("user_bob", "bob@example.com", "Bob", "B").await;
    let body = json!({"first_name": "Mallory"});
    // Alice on every route of Bob's, by id and by Clerk id, and on ids that do not exist.
    for r in [
        bob.id.to_string(),
        "user_bob".to_owned(),
        Uuid::now_v7().to_string(),
        "user_nobody".to_owned(),
    ] {
        for (m, path) in [
            (Method::GET, format!("/users/{r}")),
            (Method::PUT, format!("/users/{r}")),
            (Method::PATCH, format!("/users/{r}")),
            (Method::DELETE, format!("/users/{r}")),
            (Method::POST, format!("/users/{r}/restore")),
            (Method::GET, format!("/users/{r}/export")),
        ] {
            let res = h
                .req(m.clone(), &path, A)
                .json(&body)
                .send()
                .await
                .expect("send");
            assert_problem(res, 403, "forbidden").await;
        }
    }
    let res = h.req(Method::GET, "/users", A).send().await.expect("send");
    assert_problem(res, 403, "forbidden").await;
    // A service key without admin is refused; with admin it acts as admin.
    let svc = "service:billing:users:read";
    let res = h
        .req(Method::GET, "/users/user_bob", svc)
        .send()
        .await
        .expect("send");
    assert_problem(res, 403, "forbidden").await;
    let res = h
        .req(Method::GET, "/users/user_bob", "service:ops:admin")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    // Without credentials: 401.
    let res = h
        .client
        .get(format!("{}/users/me", h.base))
        .send()
        .await
        .expect("send");
    assert_problem(res, 401, "unauthorized").await;
    // Bob on himself by every kind of ref, the admin on Bob.
    for (who, r) in [
        (B, "me".to_owned()),
        (B, "user_bob".to_owned()),
        (B, bob.id.to_string()),
        (ADMIN, bob.id.to_string()),
    ] {
        let res = h
            .req(Method::GET, &format!("/users/{r}"), who)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 200, "{who} {r}");
        let u: Value = res.json().await.expect("json");
        assert_eq!(u["id"], bob.id.to_string());
    }
    // The resource has exactly the fields of API.md.
    let u: Value = h
        .req(Method::GET, "/users/me", B)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let mut keys: Vec<_> = u.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "clerk_user_id",
            "created_at",
            "deleted_at",
            "email",
            "first_name",
            "id",
            "last_name",
            "last_sign_in_at",
            "onboarding_completed",
            "onboarding_completed_at",
            "onboarding_step",
            "profile_image_url",
            "updated_at"
        ]
    );
    // An unknown user is 404 for an admin.
    let res = h
        .req(Method::GET, "/users/user_nobody", ADMIN)
        .send()
        .await
        .expect("send");
    assert_problem(res, 404, "not_found").await;
    assert!(
        h.audit(bob.id).await.is_empty(),
        "refused requests change nothing"
    );
}

async fn users_update_validates_and_refuses_read_only_fields(backend: Backend) {
    let h = harness(backend, &[]).await;
    let a = h
        .insert("user_alice", "alice@example.com", "Alice", "A")
        .await;
    for (body, field) in [
        (json!({"email": "x@example.com"}), "email"),
        (json!({"id": Uuid::now_v7()}), "id"),
        (json!({"clerk_user_id": "user_x"}), "clerk_user_id"),
        (json!({"first_name": "Al", "nickname": "x"}), "nickname"),
    ] {
        let res = h
            .req(Method::PATCH, "/users/me", A)
            .json(&body)
            .send()
            .await
            .expect("send");
        let p = assert_problem(res, 422, "validation_error").await;
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    let bad = json!({
        "first_name": "  ",
        "last_name": "x".repeat(101),
        "profile_image_url": "http://insecure.example.com/a.png",
        "onboarding_step": "Step One",
    });
    let res = h
        .req(Method::PUT, "/users/me", A)
        .json(&bad)
        .send()
        .await
        .expect("send");
    let p = assert_problem(res, 422, "validation_error").await;
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "first_name",
            "last_name",
            "profile_image_url",
            "onboarding_step"
        ]
    );
    assert!(
        h.audit(a.id).await.is_empty(),
        "invalid updates change nothing"
    );

    let res = h
        .req(Method::PATCH, "/users/me", A)
        .json(
            &json!({"first_name": "  Ada ", "profile_image_url": "https://img.example.com/a.png",
                      "onboarding_step": "connect_google", "onboarding_completed": true}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let u: Value = res.json().await.expect("json");
    assert_eq!(u["first_name"], "Ada");
    assert_eq!(u["last_name"], "A", "untouched");
    assert_eq!(u["email"], "alice@example.com");
    assert_eq!(u["onboarding_completed"], true);
    assert!(u["onboarding_completed_at"].is_string(), "{u}");
    // PUT is partial too; null clears a field.
    let res = h
        .req(Method::PUT, &format!("/users/{}", a.id), A)
        .json(&json!({"last_name": null}))
        .send()
        .await
        .expect("send");
    let u: Value = res.json().await.expect("json");
    assert_eq!(u["last_name"], Value::Null);
    assert_eq!(u["first_name"], "Ada");
    // The admin edits Alice: one entry per change, each with its actor.
    let res = h
        .req(Method::PATCH, "/users/user_alice", ADMIN)
        .json(&json!({"onboarding_completed": false}))
        .send()
        .await
        .expect("send");
    let u: Value = res.json().await.expect("json");
    assert_eq!(u["onboarding_completed_at"], Value::Null);
    let by = |who: &str| {
        (
            "user.updated".to_owned(),
            "user".to_owned(),
            Some(who.to_owned()),
        )
    };
    assert_eq!(
        h.audit(a.id).await,
        vec![by("user_alice"), by("user_alice"), by("user_root")]
    );
}

async fn users_soft_delete_restore_and_retention(backend: Backend) {
    let h = harness(backend, &[("USER_RETENTION_DAYS", "7")]).await;
    let a = h
        .insert("user_alice", "alice@example.com", "Alice", "A")
        .await;
    crate::webhooks::connect_db(h.state.app().db().writer(), a.id, "google").await;
    let res = h
        .req(Method::DELETE, "/users/me", A)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    let res = h
        .req(Method::GET, "/users/me", A)
        .send()
        .await
        .expect("send");
    assert_problem(res, 404, "not_found").await;
    let res = h
        .req(Method::GET, "/users/user_alice", ADMIN)
        .send()
        .await
        .expect("send");
    assert_problem(res, 404, "not_found").await;
    let res = h
        .req(Method::GET, "/users/user_alice?include_deleted=true", ADMIN)
        .send()
        .await
        .expect("send");
    let u: Value = res.json().await.expect("json");
    assert!(u["deleted_at"].is_string(), "{u}");
    assert_eq!(
        credentials_of_db(h.state.app().db().writer(), a.id).await,
        (0, 0, vec!["disconnected".to_owned()])
    );
    // Not for the user themself; the admin restores.
    let res = h
        .req(Method::POST, "/users/user_alice/restore", A)
        .send()
        .await
        .expect("send");
    assert_problem(res, 403, "forbidden").await;
    let res = h
        .req(Method::POST, "/users/user_alice/restore", ADMIN)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let u: Value = res.json().await.expect("json");
    assert_eq!(u["deleted_at"], Value::Null);
    let res = h
        .req(Method::GET, "/users/me", A)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let res = h
        .req(Method::POST, "/users/user_alice/restore", ADMIN)
        .send()
        .await
        .expect("send");
    assert_problem(res, 409, "conflict").await;
    // Deleted 8 days ago with a 7-day window: too late.
    let res = h
        .req(Method::DELETE, &format!("/users/{}", a.id), ADMIN)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 204);
    let db = h.state.app().db().writer();
    let mut stored = users::find_by_id(db, a.id, Deleted::Include)
        .await
        .expect("q")
        .expect("user");
    stored.deleted_at = Some(Utc::now().trunc_subsecs(6) - Duration::days(8));
    users::update(db, stored).await.expect("backdate");
    let res = h
        .req(Method::POST, "/users/user_alice/restore", ADMIN)
        .send()
        .await
        .expect("send");
    assert_problem(res, 409, "conflict").await;
    let del = |who: &str| {
        (
            "user.deleted".to_owned(),
            "user".to_owned(),
            Some(who.to_owned()),
        )
    };
    assert_eq!(
        h.audit(a.id).await,
        vec![
            del("user_alice"),
            (
                "user.restored".to_owned(),
                "user".to_owned(),
                Some("user_root".to_owned())
            ),
            del("user_root"),
        ]
    );
}

async fn users_search_paginates_without_duplicates(backend: Backend) {
    let h = harness(backend, &[]).await;
    let same = Utc::now().trunc_subsecs(6);
    let mut all = HashSet::new();
    for i in 0..23 {
        // Several share one created_at: the id breaks the tie.
        let at = if i % 3 == 0 {
            same
        } else {
            same - Duration::seconds(i)
        };
        let u = h
            .insert_at(
                &format!("user_u{i}"),
                &format!("u{i}@example.com"),
                "Common",
                &format!("Name{i}"),
                at,
            )
            .await;
        all.insert(u.id.to_string());
    }
    h.insert("user_pct", "pct@example.com", "Fifty%Off", "Under_Score")
        .await;
    h.insert("user_case", "MiXeD@Example.com", "Grace", "Hopper")
        .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = "/users?q=common&limit=7".to_owned();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = h
            .req(Method::GET, &url, ADMIN)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        pages += 1;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 7);
        seen.extend(
            items
                .iter()
                .map(|u| u["id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert_eq!(unique, all, "every match, once");

    let search = |q: &str| {
        let url = format!("/users?q={}", urlencode(q));
        let req = h.req(Method::GET, &url, ADMIN);
        async move {
            let v: Value = req.send().await.expect("send").json().await.expect("json");
            v["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|u| u["clerk_user_id"].as_str().expect("id").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("mixed@EXAMPLE").await, ["user_case"]);
    assert_eq!(search("hOpPeR").await, ["user_case"]);
    assert_eq!(search("%").await, ["user_pct"], "% matches itself");
    assert_eq!(search("_").await, ["user_pct"], "_ matches itself");
    let res = h
        .req(Method::GET, "/users?limit=0", ADMIN)
        .send()
        .await
        .expect("send");
    assert_problem(res, 400, "invalid_request").await;
    let res = h
        .req(Method::GET, "/users?limit=101", ADMIN)
        .send()
        .await
        .expect("send");
    assert_problem(res, 400, "invalid_request").await;
    let res = h
        .req(Method::GET, "/users?cursor=garbage", ADMIN)
        .send()
        .await
        .expect("send");
    assert_problem(res, 400, "invalid_request").await;
    let page: Value = h
        .req(Method::GET, "/users", ADMIN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        page["items"].as_array().expect("items").len(),
        20,
        "default limit"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn users_export_contains_everything(backend: Backend) {
    let h = harness(backend, &[]).await;
    let a = h
        .insert("user_alice", "alice@example.com", "Alice", "A")
        .await;
    h.insert("user_bob", "bob@example.com", "Bob", "B").await;
    crate::webhooks::connect_db(h.state.app().db().writer(), a.id, "google").await;
    h.req(Method::PATCH, "/users/me", A)
        .json(&json!({"first_name": "Ada"}))
        .send()
        .await
        .expect("send");
    let res = h
        .req(Method::GET, "/users/me/export", A)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("json");
    assert_eq!(doc["user"]["id"], a.id.to_string());
    assert_eq!(doc["user"]["first_name"], "Ada");
    assert_eq!(
        doc["preferences"],
        Value::Null,
        "defaults: no overrides stored"
    );
    assert_eq!(doc["preference_history"], json!([]));
    let integ = doc["integrations"].as_array().expect("integrations");
    assert_eq!(integ.len(), 1);
    assert_eq!(integ[0]["provider"], "google");
    let audit = doc["audit"].as_array().expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], "user.updated");
    let text = doc.to_string();
    assert!(
        !text.contains("ciphertext") && !text.contains("pkce"),
        "no secrets: {text}"
    );
    assert!(!text.contains("bob@example.com"), "only Alice's data");
    let res = h
        .req(Method::GET, "/users/user_alice/export", B)
        .send()
        .await
        .expect("send");
    assert_problem(res, 403, "forbidden").await;
}
