//! `GET /users` (admins only): keyset pagination without duplicates, case-insensitive
//! search where `%` and `_` match themselves, limit and cursor validation.

use std::collections::HashSet;

use chrono::Duration;
use reqwest::Method;
use serde_json::Value;
use testkit::{Backend, both_backends, fixtures};

use super::users_app;
use crate::common::assert_problem;

both_backends!(users_search_paginates_without_duplicates);

async fn users_search_paginates_without_duplicates(backend: Backend) {
    let h = users_app(backend, &[]).await;
    let same = fixtures::now();
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
        all.insert(u.to_string());
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
            .req(Method::GET, &url, &h.admin)
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
        let req = h.req(Method::GET, &url, &h.admin);
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
    for bad in [
        "/users?limit=0",
        "/users?limit=101",
        "/users?cursor=garbage",
    ] {
        let res = h
            .req(Method::GET, bad, &h.admin)
            .send()
            .await
            .expect("send");
        assert_problem(res, 400, "invalid_request").await;
    }
    let page: Value = h
        .req(Method::GET, "/users", &h.admin)
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
