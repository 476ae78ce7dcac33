//! The OpenAPI document (`GET /api/openapi.json`): served as the code makes it, complete (every
//! route the README lists, every status an operation answers with a body in one error shape), and
//! its examples accepted by the server. schemathesis checks it against a live server from outside
//! (`scripts/api-contract`).

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::TestServer;

fn document() -> Value {
    serde_json::to_value(server::api::openapi_document()).unwrap()
}

/// A path with its parameters unnamed (`/api/dashboards/{}`): the README may name them for readers.
fn normalised(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if inside => {}
            c => out.push(c),
        }
    }
    out
}

/// Every `(METHOD, path)` of the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut all = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            all.insert((method.to_uppercase(), path.clone()));
        }
    }
    all
}

#[tokio::test]
async fn the_server_serves_the_document_its_code_makes() {
    let server = TestServer::quiet().await;
    let response = reqwest::get(server.url("/api/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, document());
    assert_eq!(served["openapi"], "3.1.0");
    server.stop().await;
}

#[test]
fn every_route_of_the_readme_is_described_and_nothing_else() {
    let doc = document();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme.split("## HTTP API").nth(1).unwrap();
    let table = section.split("\n\n").find(|part| part.starts_with("| endpoint")).unwrap();
    let method = |word: &str| !word.is_empty() && word.bytes().all(|b| b.is_ascii_uppercase());
    let mut listed = BTreeSet::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        // "| `GET`/`PUT /api/admin/live-mode` `{mode}` …", "| `GET`, `POST /api/admin/displays`; `PATCH`, …"
        let cell = line.split(" | ").next().unwrap();
        let mut methods = Vec::new();
        for token in cell.split('`').skip(1).step_by(2) {
            match token.split_once(' ') {
                None if method(token) => methods.push(token.to_owned()),
                Some((word, path)) if method(word) && path.starts_with('/') => {
                    methods.push(word.to_owned());
                    let path = path.split('?').next().unwrap();
                    listed.extend(methods.drain(..).map(|m| (m, normalised(path))));
                }
                _ => {}
            }
        }
    }
    let mut described: BTreeSet<_> = operations(&doc).into_iter().map(|(m, path)| (m, normalised(&path))).collect();
    // The health checks and the document itself are described in the README's prose, not its table.
    for health in ["/healthz", "/readyz"] {
        assert!(described.remove(&("GET".to_owned(), health.to_owned())), "{health} is described");
    }
    assert_eq!(listed, described, "the README's table (left) and the document (right) differ");
}

#[test]
fn every_answer_is_described_and_every_error_has_the_one_body() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2') || s == "101"), "{at}: no success described");
            for status in ["500", "503"] {
                assert!(responses.contains_key(status), "{at}: no {status}");
            }
            for (status, response) in responses {
                assert!(!response["description"].as_str().unwrap().is_empty(), "{at} {status}: no description");
                let json = &response["content"]["application/json"]["schema"];
                if status.starts_with('4') || status.starts_with('5') {
                    if let Some(reference) = json["$ref"].as_str() {
                        if path != "/readyz" {
                            assert_eq!(reference, "#/components/schemas/ErrorBody", "{at} {status}");
                        }
                    } else {
                        assert!(response["content"].get("text/plain").is_some(), "{at} {status}: no body described");
                    }
                }
            }
            // Every schema an operation names exists.
            for reference in operation.to_string().split("\"$ref\":\"#/components/schemas/").skip(1) {
                let name = reference.split('"').next().unwrap();
                assert!(schemas.contains_key(name), "{at}: {name} is not among the schemas");
            }
        }
    }
    let security = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(security["session"]["in"], "cookie");
    assert_eq!(security["apiKey"]["scheme"], "bearer");
    let publish = &doc["paths"]["/api/v1/publish/{topic}"]["post"];
    assert_eq!(publish["security"], serde_json::json!([{"apiKey": []}]));
    let statuses: Vec<&String> = publish["responses"].as_object().unwrap().keys().collect();
    for status in ["200", "400", "401", "403", "409", "413", "422", "429", "500", "503"] {
        assert!(statuses.iter().any(|s| *s == status), "publish: no {status} in {statuses:?}");
    }
    assert!(
        publish["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "the Idempotency-Key header is described"
    );
}

#[tokio::test]
async fn the_documents_request_examples_are_accepted() {
    let server = TestServer::quiet().await;
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    // The publish body's example publishes.
    let example =
        &doc["paths"]["/api/v1/publish/{topic}"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let body = match example["$ref"].as_str() {
        Some(reference) => &schemas[reference.rsplit('/').next().unwrap()]["example"],
        None => &example["example"],
    };
    assert!(body.is_object(), "the publish body has an example: {example}");
    let published = server
        .http()
        .post(server.url("/api/v1/publish/examples/points"))
        .bearer_auth(server.key("acme"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 200, "{}", published.text().await.unwrap());
    // A new dashboard and widget from the schemas' examples are taken as they are.
    let admin = support::As::user(&server, support::ACME_ADMIN).await;
    let (status, dashboard) =
        admin.call(reqwest::Method::POST, "/api/dashboards", Some(schemas["NewDashboard"]["example"].clone())).await;
    assert_eq!(status, 201, "{dashboard}");
    let path = format!("/api/dashboards/{}/widgets", dashboard["id"]);
    let (status, widget) =
        admin.call(reqwest::Method::POST, &path, Some(schemas["NewWidget"]["example"].clone())).await;
    assert_eq!(status, 201, "{widget}");
    server.stop().await;
}
