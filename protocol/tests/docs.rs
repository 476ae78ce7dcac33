//! `docs/protocol.md` is the contract a client author reads: it must name everything this crate
//! defines. A name added here and not there fails this test.

use protocol::{ClientMessage, ControlMessage, ErrorCode, LiveMode, close, jobs, sse, topics};

fn protocol_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    std::fs::read_to_string(path).expect("docs/protocol.md")
}

/// The names of `what` that the document does not show as code (`name`).
fn missing<'a>(doc: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names.into_iter().filter(|name| !doc.contains(&format!("`{name}`"))).collect()
}

#[test]
fn every_message_type_is_documented() {
    let doc = protocol_md();
    assert_eq!(missing(&doc, ClientMessage::TYPES), Vec::<&str>::new(), "client messages");
    assert_eq!(missing(&doc, ControlMessage::TYPES), Vec::<&str>::new(), "server messages");
}

#[test]
fn every_error_code_is_documented() {
    let doc = protocol_md();
    assert_eq!(missing(&doc, ErrorCode::ALL.map(ErrorCode::as_str)), Vec::<&str>::new());
}

#[test]
fn every_close_code_has_a_row_in_the_close_code_table() {
    let doc = protocol_md();
    let table = &doc[doc.find("## Close codes").expect("a close code section")..];
    let absent: Vec<u16> = close::ALL.into_iter().filter(|code| !table.contains(&format!("\n| {code} |"))).collect();
    assert_eq!(absent, Vec::<u16>::new());
}

#[test]
fn every_live_mode_is_documented() {
    let doc = protocol_md();
    assert_eq!(missing(&doc, LiveMode::ALL.map(LiveMode::as_str)), Vec::<&str>::new());
}

#[test]
fn every_sse_event_is_documented() {
    let doc = protocol_md();
    let events = sse::DATA_EVENTS.into_iter().chain(sse::CONTROL_EVENTS).chain(jobs::JOB_EVENTS);
    assert_eq!(missing(&doc, events), Vec::<&str>::new());
}

#[test]
fn every_shared_topic_is_documented() {
    let doc = protocol_md();
    let names = [
        topics::PRESENCE_ONLINE_TOPIC,
        topics::PRESENCE_ACTIVITY_TOPIC,
        topics::DASHBOARD_EDITS_TOPIC,
        topics::NOTIFICATIONS_TOPIC,
        topics::JOBS_TOPIC,
    ];
    assert_eq!(missing(&doc, names), Vec::<&str>::new());
}
