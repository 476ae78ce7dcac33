//! The SSE stream of one job over real HTTP: malformed and unknown ids, tenancy, the run as it
//! happens ending with its final status, `Last-Event-ID`, and the per-user limit per job.

mod support;

use protocol::{Event, Item, Level, TopicKind};
use serde_json::json;
use support::{ACME_ADMIN, As, GLOBEX_ADMIN, TestServer, acme, metric};

fn step(job: &str, status: &str, progress: u64, level: Level, line: &str) -> Vec<Item> {
    vec![Item::Event(Event {
        id: format!("{job}-{line}"),
        ts: 1,
        event_type: "job".into(),
        level,
        title: "Nightly export".into(),
        body: Some(line.into()),
        severity: None,
        scheduled_at: None,
        data: json!({"jobId": job, "status": status, "progress": progress}).as_object().cloned(),
    })]
}

fn publish(server: &TestServer, items: Vec<Item>) {
    server.broker.publish(&acme("ops/jobs"), TopicKind::Events, items).unwrap();
}

#[tokio::test]
async fn a_job_streams_its_run_and_ends_with_its_final_status() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    publish(&server, step("job-1", "running", 0, Level::Info, "Started"));
    publish(&server, step("job-2", "running", 0, Level::Info, "Other job"));
    let mut sse = admin.stream("/api/v1/realtime/jobs/job-1", &[]).await;
    let snapshot = sse.next().await;
    assert_eq!(snapshot.name, "snapshot");
    let job = snapshot.json();
    assert_eq!(
        (job["jobId"].as_str(), job["status"].as_str(), job["summary"].as_str()),
        (Some("job-1"), Some("running"), Some("Started"))
    );
    assert_eq!(job["log"].as_array().unwrap().len(), 1, "only this job's lines");

    publish(&server, step("job-2", "running", 50, Level::Info, "Not ours"));
    publish(&server, step("job-1", "running", 60, Level::Info, "Exporting"));
    let progress = sse.next().await;
    assert_eq!(progress.name, "progress");
    assert_eq!(progress.json(), json!({"jobId": "job-1", "status": "running", "progress": 60, "summary": "Exporting"}));
    let log = sse.next().await;
    assert_eq!((log.name.as_str(), log.json()["text"].as_str()), ("log", Some("Exporting")));
    let resume_from = log.id.clone().unwrap();

    publish(&server, step("job-1", "failed", 80, Level::Error, "Upstream 503"));
    let names: Vec<String> =
        [sse.next().await, sse.next().await, sse.next().await].iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["progress", "log", "step_error"]);
    let end = sse.next().await;
    assert_eq!((end.name.as_str(), end.json()["status"].as_str()), ("end", Some("failed")));
    assert!(sse.next_or_end().await.is_none(), "the stream ends with the job");

    // Coming back after the "Exporting" line: only what came after it.
    let returns = metric(&server, "livedash_sse_reconnections_total{stream=\"job\"}").await;
    let mut again = admin.stream("/api/v1/realtime/jobs/job-1", &[("last-event-id", &resume_from)]).await;
    let names: Vec<String> = [again.next().await, again.next().await, again.next().await, again.next().await]
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(names, ["progress", "log", "step_error", "end"]);
    assert!(metric(&server, "livedash_sse_reconnections_total{stream=\"job\"}").await > returns);
    assert!(
        metric(&server, "livedash_sse_updates_sent_total{stream=\"job\"}").await >= 9.0,
        "snapshot, 2 + 3 step events, then 3 again"
    );
    server.stop().await;
}

#[tokio::test]
async fn job_ids_are_checked_jobs_belong_to_a_tenant_and_streams_per_job_are_capped() {
    let server = TestServer::quiet().await;
    let admin = As::user(&server, ACME_ADMIN).await;
    publish(&server, step("job-7", "running", 0, Level::Info, "Started"));
    for bad in ["job%207", "job!7", &"j".repeat(65)] {
        let (status, body) = admin.get(&format!("/api/v1/realtime/jobs/{bad}")).await;
        assert_eq!((status, body["field"].as_str()), (400, Some("jobId")), "{bad}");
    }
    assert_eq!(admin.get("/api/v1/realtime/jobs/job-8").await.0, 404, "no such job");
    assert_eq!(admin.get("/api/v1/realtime/jobs/job-7?topic=ops/other").await.0, 404, "not in that topic");
    let globex = As::user(&server, GLOBEX_ADMIN).await;
    assert_eq!(globex.get("/api/v1/realtime/jobs/job-7").await.0, 404, "another tenant's job is unknown");
    assert_eq!(reqwest::get(server.url("/api/v1/realtime/jobs/job-7")).await.unwrap().status(), 401);

    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(admin.stream("/api/v1/realtime/jobs/job-7", &[]).await);
    }
    let sixth = admin.open("/api/v1/realtime/jobs/job-7", &[]).await;
    assert_eq!(sixth.status(), 429);
    let body: serde_json::Value = sixth.json().await.unwrap();
    assert_eq!(body["limit"], json!({"name": "job_streams_per_user", "max": 5}));

    // A tenant backed out to polling: open job streams end with 4405, new ones are refused.
    let (status, _) = admin.call(reqwest::Method::PUT, "/api/admin/live-mode", Some(json!({"mode": "polling"}))).await;
    assert_eq!(status, 200);
    for mut stream in open {
        let close = loop {
            let event = stream.next().await;
            if event.name == "close" {
                break event;
            }
        };
        assert_eq!(close.json()["code"], 4405);
    }
    let (status, body) = admin.get("/api/v1/realtime/jobs/job-7").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("polling_only")));
    server.stop().await;
}
