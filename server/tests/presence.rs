//! Active users over real sockets: coming online, activity, going offline; tenants apart; publishers
//! cannot forge presence.

mod support;

use protocol::{ActivityAction, ClientMessage};
use serde_json::Value;
use support::{ACME_ADMIN, ACME_VIEWER, GLOBEX_ADMIN, TestServer};

/// The next update's first item, skipping snapshots.
async fn next_item(client: &mut support::Client) -> Value {
    loop {
        let message = client.next_json().await;
        if message.get("type").is_none() {
            return message["series"][0].clone();
        }
    }
}

#[tokio::test]
async fn the_online_list_follows_connections_and_reported_activity() {
    let server = TestServer::quiet().await;
    let mut watcher = server.connect_as(ACME_VIEWER).await;
    watcher.subscribe("online", "presence/online", None).await;
    let snapshot = watcher.next_json().await;
    assert_eq!(snapshot["type"], "snapshot");
    let docs = snapshot["series"].as_array().unwrap();
    assert!(docs.iter().any(|d| d["doc"]["email"] == ACME_VIEWER), "the watcher is online: {snapshot}");

    let mut admin = server.connect_as(ACME_ADMIN).await;
    let online = next_item(&mut watcher).await;
    assert_eq!((online["op"].as_str(), online["doc"]["email"].as_str()), (Some("upsert"), Some(ACME_ADMIN)));
    let id = online["id"].clone();

    admin.send(&ClientMessage::Activity { action: ActivityAction::OpenDashboard, detail: "Operations".into() }).await;
    let active = next_item(&mut watcher).await;
    assert_eq!(active["doc"]["activity"], "opened Operations");

    admin.send(&ClientMessage::Activity { action: ActivityAction::ChangeMode, detail: "x\u{1b}[2J".into() }).await;
    let refused = admin.next_json().await;
    assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some("bad_message")));

    // A globex user sees only globex: acme's admin going offline does not reach them.
    let mut globex = server.connect_as(GLOBEX_ADMIN).await;
    globex.subscribe("online", "presence/online", None).await;
    let theirs = globex.next_json().await;
    let emails: Vec<&str> =
        theirs["series"].as_array().unwrap().iter().filter_map(|d| d["doc"]["email"].as_str()).collect();
    assert_eq!(emails, [GLOBEX_ADMIN], "{theirs}");

    drop(admin);
    let offline = next_item(&mut watcher).await;
    assert_eq!((offline["op"].as_str(), &offline["id"]), (Some("delete"), &id));
    globex.send(&ClientMessage::Ping).await;
    assert_eq!(globex.next_json().await["type"], "pong", "nothing of acme's came before the pong");
    server.stop().await;
}

#[tokio::test]
async fn sign_ins_and_sign_outs_appear_as_activity() {
    let server = TestServer::quiet().await;
    let mut watcher = server.connect_as(ACME_VIEWER).await;
    watcher.subscribe("activity", "presence/activity", None).await;
    assert_eq!(watcher.next_json().await["type"], "snapshot");
    let cookie = server.login(ACME_ADMIN).await;
    // The watcher's own "came online" is published as its socket opens, so it may land on either
    // side of the snapshot: skipped if after.
    let mut signed_in = next_item(&mut watcher).await;
    if signed_in["title"] == format!("{ACME_VIEWER} came online") {
        signed_in = next_item(&mut watcher).await;
    }
    assert_eq!(signed_in["title"], format!("{ACME_ADMIN} signed in"));
    let response = server.http().post(server.url("/api/auth/logout")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(next_item(&mut watcher).await["title"], format!("{ACME_ADMIN} signed out"));
    server.stop().await;
}

#[tokio::test]
async fn publishers_cannot_write_presence() {
    let server = TestServer::quiet().await;
    let response = server
        .http()
        .post(server.url("/api/v1/publish/presence/online"))
        .bearer_auth(server.key("acme"))
        .json(&serde_json::json!({"changes": [{"op": "delete", "id": "u1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["field"], "topic", "{body}");
    server.stop().await;
}
