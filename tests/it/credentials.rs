//! Users' credentials through `/api/credentials`: create, read, update, delete with
//! Huginn's fields and trimming; validation answers; names unique per user; other users
//! (admins included) see nothing; a read token cannot write; lists and save answers
//! never carry the value; the database file never holds it in clear.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::{ADMIN_TOKEN, TestHub};
use serde_json::{Value, json};

/// Every byte SQLite keeps for the database: the file, its WAL and shared memory.
fn database_has(dir: &Path, needle: &str) -> bool {
    let mut found = false;
    let mut files = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("muninn.db") {
            files += 1;
            let bytes = std::fs::read(e.path()).unwrap();
            found |= bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        }
    }
    assert!(files > 0, "no database file in {}", dir.display());
    found
}

async fn create(hub: &TestHub, token: &str, body: Value) -> Value {
    let r = hub.post_json("/api/credentials", token, &body).await;
    assert_eq!(r.status, 201, "{body}: {}", r.text());
    r.json()
}

#[actix_rt::test]
async fn crud_with_huginn_fields_trimmed_and_the_value_only_in_the_owners_read() {
    let hub = TestHub::start().await;
    let (_, t) = hub.add_user("alice").await;
    let value = "ghp_crudValue-81c4e2";

    let made = create(
        &hub,
        &t,
        json!({"credential_name": "  github  ", "credential_value": format!("\n {value} \t")}),
    )
    .await;
    assert_eq!(made["credential_name"], "github");
    assert_eq!(made["mode"], "text", "text by default");
    assert!(made.get("credential_value").is_none(), "{made}");
    assert!(made["created_at"].as_str().unwrap().ends_with('Z'));
    let id = made["id"].as_i64().unwrap();
    let path = format!("/api/credentials/{id}");

    let one = hub.get(&path, &t).await;
    assert_eq!(one.status, 200, "{}", one.text());
    let one = one.json();
    assert_eq!(one["credential_value"], value, "stored trimmed");
    assert_eq!(one["credential_name"], "github");

    // Huginn's form shape works too; a partial update keeps what it does not name.
    let r = hub
        .send_json(
            "PUT",
            &path,
            &t,
            &json!({"user_credential": {"mode": "java_script"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["mode"], "java_script");
    assert!(r.json().get("credential_value").is_none());
    let r = hub
        .send_json(
            "PATCH",
            &path,
            &t,
            &json!({"credential_name": " gh ", "credential_value": "new-value-5d1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let one = hub.get(&path, &t).await.json();
    assert_eq!(
        (
            &one["credential_name"],
            &one["credential_value"],
            &one["mode"]
        ),
        (&json!("gh"), &json!("new-value-5d1"), &json!("java_script"))
    );

    let list = hub.get("/api/credentials", &t).await;
    assert_eq!(list.status, 200);
    assert!(!list.text().contains("new-value-5d1"), "{}", list.text());
    let list = list.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["credential_name"], "gh");
    assert!(list[0].get("credential_value").is_none());

    assert_eq!(hub.delete(&path, &t).await.status, 204);
    assert_eq!(hub.get(&path, &t).await.status, 404);
    assert_eq!(hub.delete(&path, &t).await.status, 404);
    assert_eq!(hub.get("/api/credentials", &t).await.json(), json!([]));
}

#[actix_rt::test]
async fn invalid_bodies_are_422_with_the_reason_and_never_the_value() {
    let hub = TestHub::start().await;
    let (_, t) = hub.add_user("val").await;
    let secret = "sk_validationValue-7ab3";
    let cases = [
        (
            json!({"credential_name": "   ", "credential_value": secret}),
            "credential_name: can't be blank",
        ),
        (
            json!({"credential_name": "k"}),
            "credential_value: can't be blank",
        ),
        (
            json!({"credential_name": "k", "credential_value": " \n "}),
            "credential_value: can't be blank",
        ),
        (
            json!({"credential_name": "k", "credential_value": secret, "mode": "ruby"}),
            "mode: must be text or java_script, not \"ruby\"",
        ),
        (
            json!({"credential_name": "k", "credential_value": secret, "value": 1}),
            "unknown field `value`",
        ),
        (
            json!({"credential_name": "x".repeat(256), "credential_value": secret}),
            "credential_name: is too long",
        ),
        (json!(["k", secret]), "must be a JSON object"),
    ];
    for (body, want) in cases {
        let r = hub.post_json("/api/credentials", &t, &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        let error = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(error.contains(want), "{body}: {error}");
        assert!(!error.contains(secret), "{body}: {error}");
    }
    // Every problem at once.
    let r = hub
        .post_json("/api/credentials", &t, &json!({"mode": "x"}))
        .await;
    let error = r.json()["error"]["message"].as_str().unwrap().to_string();
    for want in ["credential_name", "credential_value", "mode"] {
        assert!(error.contains(want), "{error}");
    }

    // A name the user already has, on create and on rename.
    create(
        &hub,
        &t,
        json!({"credential_name": "dup", "credential_value": "a"}),
    )
    .await;
    let other = create(
        &hub,
        &t,
        json!({"credential_name": "other", "credential_value": "b"}),
    )
    .await;
    let r = hub
        .post_json(
            "/api/credentials",
            &t,
            &json!({"credential_name": " dup ", "credential_value": secret}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "credential_name");
    let error = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        error.contains("already been taken") && error.contains("\"dup\""),
        "{error}"
    );
    assert!(!error.contains(secret));
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/credentials/{}", other["id"]),
            &t,
            &json!({"credential_name": "dup"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    // Blanking a field on update is refused too.
    let r = hub
        .send_json(
            "PUT",
            &format!("/api/credentials/{}", other["id"]),
            &t,
            &json!({"credential_value": null}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        hub.get("/api/credentials", &t)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[actix_rt::test]
async fn names_are_per_user_and_other_users_admins_included_get_404() {
    let hub = TestHub::start().await;
    let (_, a) = hub.add_user("a").await;
    let (_, b) = hub.add_user("b").await;
    let mine = create(
        &hub,
        &a,
        json!({"credential_name": "api_key", "credential_value": "a-value-913"}),
    )
    .await;
    let theirs = create(
        &hub,
        &b,
        json!({"credential_name": "api_key", "credential_value": "b-value-274"}),
    )
    .await;
    let path = format!("/api/credentials/{}", mine["id"]);

    for token in [b.as_str(), ADMIN_TOKEN] {
        let r = hub.get(&path, token).await;
        assert_eq!(r.status, 404, "{}", r.text());
        assert!(!r.text().contains("a-value-913"));
        let r = hub
            .send_json("PUT", &path, token, &json!({"credential_value": "stolen"}))
            .await;
        assert_eq!(r.status, 404, "{}", r.text());
        assert_eq!(hub.delete(&path, token).await.status, 404);
        let list = hub.get("/api/credentials", token).await;
        assert!(
            !list.text().contains(&format!("\"id\":{}", mine["id"])),
            "{}",
            list.text()
        );
    }
    assert_eq!(
        hub.get(&path, &a).await.json()["credential_value"],
        "a-value-913"
    );
    let theirs = hub
        .get(&format!("/api/credentials/{}", theirs["id"]), &b)
        .await
        .json();
    assert_eq!(theirs["credential_value"], "b-value-274");
}

#[actix_rt::test]
async fn a_read_token_lists_and_reads_but_cannot_write() {
    let hub = TestHub::start().await;
    let (_, t) = hub.add_user("scoped").await;
    let made = create(
        &hub,
        &t,
        json!({"credential_name": "k", "credential_value": "v"}),
    )
    .await;
    let r = hub
        .post_json("/api/tokens", &t, &json!({"name": "ro", "scope": "read"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ro = r.json()["token"].as_str().unwrap().to_string();
    let path = format!("/api/credentials/{}", made["id"]);
    assert_eq!(hub.get("/api/credentials", &ro).await.status, 200);
    assert_eq!(hub.get(&path, &ro).await.status, 200);
    let r = hub
        .post_json(
            "/api/credentials",
            &ro,
            &json!({"credential_name": "n", "credential_value": "v"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = hub
        .send_json("PUT", &path, &ro, &json!({"credential_value": "w"}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(hub.delete(&path, &ro).await.status, 403);
    assert_eq!(hub.get(&path, &t).await.json()["credential_value"], "v");
    assert_eq!(hub.get("/api/credentials", "nope").await.status, 401);
}

#[actix_rt::test]
async fn values_are_encrypted_at_rest_including_replaced_ones() {
    let hub = TestHub::start().await;
    let (_, t) = hub.add_user("rest").await;
    let first = "at-rest-first-value-0c9d7e";
    let second = "at-rest-second-value-4f2a1b";
    let made = create(
        &hub,
        &t,
        json!({"credential_name": "stored_key", "credential_value": first}),
    )
    .await;
    let path = format!("/api/credentials/{}", made["id"]);
    let r = hub
        .send_json("PUT", &path, &t, &json!({"credential_value": second}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(hub.get(&path, &t).await.json()["credential_value"], second);
    let dir = hub.dir.path();
    // On PostgreSQL: its relation files and write-ahead log instead of SQLite's files.
    let database_has = |dir: &Path, needle: &str| match &hub.pg {
        Some(pg) => common::postgres::files_hold(&pg.url("hub"), needle),
        None => database_has(dir, needle),
    };
    assert!(
        database_has(dir, "stored_key"),
        "the name is stored as it is"
    );
    assert!(
        !database_has(dir, first),
        "the first value is in the database file"
    );
    assert!(
        !database_has(dir, second),
        "the value is in the database file"
    );
}
