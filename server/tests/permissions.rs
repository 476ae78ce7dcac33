//! Topic rules over real WebSocket, SSE, polling and job streams: a topic a role may not read is
//! refused with an error naming it, fields a role may not see never reach it, and a change of the
//! rules while subscribed ends or refilters what is open. The admin API's validation and audit.

mod support;

use protocol::{Change, ChangeOp, ControlMessage, ErrorCode, Event, Item, Level, PollAnswer, ServerMessage, TopicKind};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ACME_ADMIN, ACME_VIEWER, As, Client, TestServer, acme, metric};

/// Finance for admins only; people's salaries too.
fn rules() -> Value {
    json!({"rules": [
        {"topics": "finance/**", "read": ["admin"]},
        {"topics": "ops/people", "read": ["viewer", "admin"], "fields": [{"field": "salary", "roles": ["admin"]}]},
    ]})
}

async fn set_rules(admin: &As, rules: Value) -> Value {
    let (status, body) = admin.call(Method::PUT, "/api/admin/topic-rules", Some(rules)).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn point(v: f64) -> Vec<Item> {
    vec![Item::Point(protocol::Point { ts: v as i64, value: v })]
}

fn person(id: &str, salary: u32) -> Vec<Item> {
    let doc = json!({"name": format!("person {id}"), "salary": salary}).as_object().cloned();
    vec![Item::Change(Change { op: ChangeOp::Upsert, id: id.into(), doc })]
}

fn publish_person(server: &TestServer, id: &str, salary: u32) {
    server.broker.publish(&acme("ops/people"), TopicKind::Collection, person(id, salary)).unwrap();
}

/// The documents' keys in a snapshot or update.
fn doc_keys(message: &ServerMessage) -> Vec<Vec<String>> {
    let series = match message {
        ServerMessage::Update(update) => &update.series,
        ServerMessage::Control(ControlMessage::Snapshot { series, .. }) => series,
        other => panic!("not data: {other:?}"),
    };
    series
        .iter()
        .map(|item| match item {
            Item::Change(change) => change.doc.as_ref().unwrap().keys().cloned().collect(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn forbidden_widget(message: &ServerMessage) -> Option<(String, String)> {
    match message {
        ServerMessage::Control(ControlMessage::Error { code: ErrorCode::Forbidden, message, widget_id }) => {
            Some((widget_id.clone()?, message.clone()))
        }
        _ => None,
    }
}

/// The next message that is not a pong.
async fn next_data(client: &mut Client) -> ServerMessage {
    loop {
        let message = client.next_message().await;
        if !matches!(message, ServerMessage::Control(ControlMessage::Pong { .. })) {
            return message;
        }
    }
}

#[tokio::test]
async fn a_viewer_is_refused_forbidden_topics_and_never_gets_hidden_fields_over_the_websocket() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    set_rules(&admin, rules()).await;
    publish_person(&server, "1", 100);
    server.broker.publish(&acme("finance/q3"), TopicKind::Series, point(1.0)).unwrap();
    let denied_before = metric(&server, "livedash_denials_total{reason=\"topic_rules\"}").await;

    let mut viewer = server.connect_as(ACME_VIEWER).await;
    viewer.subscribe("money", "finance/q3", None).await;
    let refused = next_data(&mut viewer).await;
    assert_eq!(
        forbidden_widget(&refused),
        Some(("money".into(), "a viewer may not read topic finance/q3".into())),
        "{refused:?}"
    );
    viewer.subscribe("people", "ops/people", None).await;
    assert_eq!(doc_keys(&next_data(&mut viewer).await), [vec!["name"]], "the snapshot has no salary");
    let mut boss = server.connect_as(ACME_ADMIN).await;
    boss.subscribe("people", "ops/people", None).await;
    assert_eq!(doc_keys(&boss.next_message().await), [vec!["name", "salary"]]);

    publish_person(&server, "2", 200);
    assert_eq!(doc_keys(&next_data(&mut viewer).await), [vec!["name"]], "nor does the update");
    assert_eq!(doc_keys(&boss.next_message().await), [vec!["name", "salary"]]);
    // The refused subscription does not exist: subscribing again is refused again, not a duplicate.
    viewer.subscribe("money", "finance/q3", None).await;
    assert!(forbidden_widget(&next_data(&mut viewer).await).is_some());
    assert!(metric(&server, "livedash_denials_total{reason=\"topic_rules\"}").await >= denied_before + 2.0);
}

#[tokio::test]
async fn a_change_of_rules_ends_what_it_takes_away_and_refilters_what_it_hides_on_an_open_websocket() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    publish_person(&server, "1", 100);
    server.broker.publish(&acme("finance/q3"), TopicKind::Series, point(1.0)).unwrap();
    let mut viewer = server.connect_as(ACME_VIEWER).await;
    viewer.subscribe("money", "finance/q3", None).await;
    assert!(matches!(viewer.next_message().await, ServerMessage::Control(ControlMessage::Snapshot { .. })));
    viewer.subscribe("people", "ops/people", None).await;
    assert_eq!(doc_keys(&viewer.next_message().await), [vec!["name", "salary"]], "no rules yet");

    let saved = set_rules(&admin, rules()).await;
    assert_eq!(saved["version"], 1);
    let mut heard = [next_data(&mut viewer).await, next_data(&mut viewer).await];
    heard.sort_by_key(|m| forbidden_widget(m).is_none());
    assert_eq!(forbidden_widget(&heard[0]).map(|(w, _)| w), Some("money".into()), "{heard:?}");
    assert_eq!(doc_keys(&heard[1]), [vec!["name"]], "a fresh snapshot without the salary");

    // Nothing more of finance comes; people's updates come filtered.
    server.broker.publish(&acme("finance/q3"), TopicKind::Series, point(2.0)).unwrap();
    publish_person(&server, "2", 200);
    let next = next_data(&mut viewer).await;
    assert_eq!(doc_keys(&next), [vec!["name"]], "{next:?}");
    // The rules lifted: the viewer may subscribe again and sees everything.
    set_rules(&admin, json!({"rules": []})).await;
    assert_eq!(doc_keys(&next_data(&mut viewer).await), [vec!["name", "salary"], vec!["name", "salary"]]);
    viewer.subscribe("money", "finance/q3", None).await;
    assert!(matches!(next_data(&mut viewer).await, ServerMessage::Control(ControlMessage::Snapshot { .. })));
}

#[tokio::test]
async fn sse_streams_and_polls_follow_the_rules_and_their_changes() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (dashboard, ids) =
        admin.create_dashboard(&[("kpi_tiles", "finance/q3"), ("document_table", "ops/people")]).await;
    let (money, people) = (ids[0].clone(), ids[1].clone());
    set_rules(&admin, rules()).await;
    publish_person(&server, "1", 100);
    server.broker.publish(&acme("finance/q3"), TopicKind::Series, point(1.0)).unwrap();
    let viewer = As::user(&server, ACME_VIEWER).await;

    // Polling: the forbidden feed's error on every poll, the other feed filtered.
    let poll = || async {
        let (status, body) = viewer.get(&format!("/api/v1/dashboards/{dashboard}/updates")).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value::<PollAnswer>(body).unwrap()
    };
    let answer = poll().await;
    let of = |answer: &PollAnswer, widget: &str| {
        answer.widgets.iter().find(|w| w.widget_id == widget).map(|w| w.messages.clone()).unwrap_or_default()
    };
    assert_eq!(forbidden_widget(&of(&answer, &money)[0]).map(|(w, _)| w), Some(money.clone()));
    assert_eq!(doc_keys(&of(&answer, &people)[0]), [vec!["name"]]);
    assert!(!answer.cursor.is_empty());

    // SSE: a `widget_error` event for the forbidden feed, the other filtered.
    let mut sse = viewer.stream(&format!("/api/stream/dashboard/{dashboard}"), &[]).await;
    let mut first = [sse.next().await, sse.next().await];
    first.sort_by_key(|e| e.name != "widget_error");
    assert_eq!(first[0].name, "widget_error");
    assert_eq!(first[0].json()["widgetId"], money.as_str());
    assert_eq!(first[0].json()["code"], "forbidden");
    assert_eq!(first[1].name, "snapshot");
    assert!(first[1].data.contains("person 1") && !first[1].data.contains("salary"), "{}", first[1].data);

    // Rules that take the people away too end that feed on the open stream.
    set_rules(
        &admin,
        json!({"rules": [{"topics": "finance/**", "read": ["admin"]}, {"topics": "ops/people", "read": ["admin"]}]}),
    )
    .await;
    let ended = sse.next().await;
    assert_eq!((ended.name.as_str(), ended.json()["widgetId"].as_str()), ("widget_error", Some(people.as_str())));
    assert_eq!(ended.json()["message"], "a viewer may not read topic ops/people");
    publish_person(&server, "2", 200);
    let answer = poll().await;
    assert!(forbidden_widget(&of(&answer, &people)[0]).is_some(), "polls follow the change too");
}

fn job_step(job: &str, status: &str, customer: &str) -> Vec<Item> {
    vec![Item::Event(Event {
        id: format!("{job}-{status}"),
        ts: 1,
        event_type: "job".into(),
        level: Level::Info,
        title: "Export".into(),
        body: Some(status.into()),
        severity: None,
        scheduled_at: None,
        data: json!({"jobId": job, "status": status, "progress": 10, "customer": customer}).as_object().cloned(),
    })]
}

#[tokio::test]
async fn a_job_stream_is_refused_a_forbidden_topic_and_ends_with_4406_when_the_rules_take_it_away() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let viewer = As::user(&server, ACME_VIEWER).await;
    server.broker.publish(&acme("ops/jobs"), TopicKind::Events, job_step("job-1", "running", "Initech")).unwrap();
    set_rules(&admin, json!({"rules": [{"topics": "ops/jobs", "read": ["admin"]}]})).await;
    let (status, body) = viewer.get("/api/v1/realtime/jobs/job-1").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{body}");
    assert_eq!(body["message"], "a viewer may not read topic ops/jobs");

    set_rules(&admin, json!({"rules": []})).await;
    let mut sse = viewer.stream("/api/v1/realtime/jobs/job-1", &[]).await;
    assert_eq!(sse.next().await.name, "snapshot");
    set_rules(&admin, json!({"rules": [{"topics": "ops/**", "read": ["admin"]}]})).await;
    let close = sse.next().await;
    assert_eq!(close.name, "close");
    assert_eq!(close.json()["code"], protocol::close::TOPIC_FORBIDDEN);
    assert_eq!(close.json()["reconnect"], false);
    assert!(sse.next_or_end().await.is_none(), "the stream ended");
}

#[tokio::test]
async fn the_admin_api_checks_rules_names_the_faulty_place_and_audits_each_change() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    let (status, body) = admin.get("/api/admin/topic-rules").await;
    assert_eq!((status, body), (200, json!({"version": 0, "rules": []})));

    let bad = json!({"rules": [{"topics": "ok/**", "read": ["admin"]}, {"topics": "a/**/b", "read": []}]});
    let (status, body) = admin.call(Method::PUT, "/api/admin/topic-rules", Some(bad)).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("rules[1].topics")), "{body}");
    let unknown_role = json!({"rules": [{"topics": "a", "read": ["owner"]}]});
    assert_eq!(admin.call(Method::PUT, "/api/admin/topic-rules", Some(unknown_role)).await.0, 400);
    let viewer = As::user(&server, ACME_VIEWER).await;
    assert_eq!(viewer.call(Method::PUT, "/api/admin/topic-rules", Some(rules())).await.0, 403);
    assert_eq!(viewer.get("/api/admin/topic-rules").await.0, 403);

    let saved = set_rules(&admin, rules()).await;
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["rules"][1]["fields"][0]["field"], "salary");
    let (_, read) = admin.get("/api/admin/topic-rules").await;
    assert_eq!(read, saved);
    support::eventually_async("the change is audited", || async {
        let (_, log) = admin.get("/api/admin/audit?limit=20").await;
        log.as_array().unwrap().iter().any(|row| {
            row["action"] == "topic_rules"
                && row["detail"].as_str().is_some_and(|d| d.starts_with("version 0 → 1: 0 rule(s) → 2"))
        })
    })
    .await;
}
