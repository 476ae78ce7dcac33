//! What operators load beside the server: the Prometheus alerting rules
//! (`deploy/prometheus/alerts.yml`), checked and unit-tested with `promtool` from Debian's
//! `prometheus` package, and the Grafana dashboard (`deploy/grafana/livedash.json`), whose queries
//! must parse. Both may name only metrics the server exports, every alert has a runbook in
//! `docs/operations.md`, and the health gauges the alerts rest on are exported by a running node.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use support::{TestServer, eventually_async, metric};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `promtool`: `LIVEDASH_PROMTOOL` if set (scripts/test sets it), else installed by the same step
/// of `scripts/lib.sh` that scripts/test runs.
fn promtool() -> PathBuf {
    static PROMTOOL: OnceLock<PathBuf> = OnceLock::new();
    PROMTOOL
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("LIVEDASH_PROMTOOL") {
                return PathBuf::from(path);
            }
            let script =
                r#"source scripts/lib.sh >&2 && with_install_lock ensure_promtool >&2 && echo "$LIVEDASH_PROMTOOL""#;
            let output = Command::new("bash").arg("-c").arg(script).current_dir(repo()).output().unwrap();
            assert!(output.status.success(), "installing promtool: {}", String::from_utf8_lossy(&output.stderr));
            PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
        })
        .clone()
}

/// Runs promtool with `args` in `dir`; its output, or a failure that shows it.
fn run_promtool(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(promtool()).args(args).current_dir(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// Every metric the server exports: the names `server/src/telemetry.rs` declares.
fn exported_metrics() -> BTreeSet<String> {
    read("server/src/telemetry.rs")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const ")?.split_once("= \"livedash_"))
        .map(|(_, rest)| format!("livedash_{}", rest.trim_end_matches("\";")))
        .collect()
}

/// The `livedash_…` metric names `text` mentions, a histogram's series (`_bucket`, `_sum`,
/// `_count`) under the histogram's name.
fn metrics_named(text: &str) -> BTreeSet<String> {
    let exported = exported_metrics();
    text.match_indices("livedash_")
        .map(|(at, _)| {
            let name: String =
                text[at..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit()).collect();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).filter(|base| exported.contains(*base)))
                .map_or(name.clone(), str::to_owned)
        })
        .filter(|name| name.len() > "livedash_".len())
        .collect()
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = repo().join("deploy/prometheus");
    let checked = run_promtool(&dir, &["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS: 13 rules found"), "{checked}");
    let tested = run_promtool(&dir, &["test", "rules", "alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_is_unit_tested_and_has_a_runbook() {
    let rules = read("deploy/prometheus/alerts.yml");
    let tests = read("deploy/prometheus/alerts.test.yml");
    let runbooks = read("docs/operations.md");
    let alerts: Vec<&str> = rules.lines().filter_map(|line| line.trim().strip_prefix("- alert: ")).collect();
    assert_eq!(alerts.len(), 13);
    for alert in alerts {
        assert!(tests.contains(&format!("alertname: {alert}\n")), "{alert} has no unit test");
        let anchor = alert.to_lowercase();
        assert!(rules.contains(&format!("runbook: docs/operations.md#{anchor}\n")), "{alert} names no runbook");
        assert!(runbooks.contains(&format!("\n### {alert}\n")), "docs/operations.md has no section {alert}");
    }
}

#[test]
fn the_rules_and_the_dashboard_name_only_metrics_the_server_exports() {
    let exported = exported_metrics();
    assert!(exported.len() > 40, "the telemetry module was read: {exported:?}");
    for file in ["deploy/prometheus/alerts.yml", "deploy/grafana/livedash.json", "docs/operations.md"] {
        let unknown: Vec<_> = metrics_named(&read(file)).difference(&exported).cloned().collect();
        assert!(unknown.is_empty(), "{file} names metrics the server does not export: {unknown:?}");
    }
}

#[test]
fn the_grafana_dashboard_is_well_formed_and_every_query_parses() {
    let dashboard: serde_json::Value = serde_json::from_str(&read("deploy/grafana/livedash.json")).unwrap();
    // Grafana 10 writes schema 38 and later; it migrates older ones, but not newer.
    let schema = dashboard["schemaVersion"].as_u64().unwrap();
    assert!((36..=39).contains(&schema), "schemaVersion {schema}");
    assert_eq!(dashboard["uid"], "livedash-overview");
    let variables: Vec<_> = dashboard["templating"]["list"].as_array().unwrap().iter().map(|v| &v["name"]).collect();
    assert_eq!(variables, ["datasource", "instance"]);
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut queries = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "{title}: a panel id twice");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24 && w > 0 && grid["h"].as_u64().unwrap() > 0, "{title}: outside the grid");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}: not on the chosen data source");
        assert!(!panel["description"].as_str().unwrap().is_empty(), "{title}: no description");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("instance=~\"$instance\""), "{title}: `{expr}` ignores the node picker");
            queries.push(expr.replace("$__rate_interval", "5m").replace("$instance", ".*"));
        }
    }
    assert!(queries.len() >= 30, "{} queries", queries.len());
    // promtool parses PromQL only inside rules: each query becomes a recording rule.
    let dir = tempfile::tempdir().unwrap();
    let rules: String = queries
        .iter()
        .enumerate()
        .map(|(i, query)| format!("      - record: dashboard:query_{i}\n        expr: {}\n", serde_json::json!(query)))
        .collect();
    std::fs::write(dir.path().join("queries.yml"), format!("groups:\n  - name: dashboard\n    rules:\n{rules}"))
        .unwrap();
    let checked = run_promtool(dir.path(), &["check", "rules", "queries.yml"]);
    assert!(checked.contains(&format!("SUCCESS: {} rules found", queries.len())), "{checked}");
}

#[tokio::test]
async fn a_node_exports_the_gauges_the_alerts_rest_on() {
    let server = TestServer::quiet().await;
    eventually_async("livedash_ready is 1", || async { metric(&server, "livedash_ready").await == 1.0 }).await;
    assert_eq!(metric(&server, "livedash_engine_ready{engine=\"memory\"}").await, 1.0);
    eventually_async("livedash_audit_backlog is exported", || async {
        let text = reqwest::get(server.metrics_url()).await.unwrap().text().await.unwrap();
        text.lines().any(|line| line.starts_with("livedash_audit_backlog "))
    })
    .await;
    let answered = metric(&server, "livedash_publish_answers_total{status=\"401\"}").await;
    let refused = server.http().post(server.url("/api/v1/publish/t")).body("{}").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(metric(&server, "livedash_publish_answers_total{status=\"401\"}").await, answered + 1.0);
    server.stop().await;
}
