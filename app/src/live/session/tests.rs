//! The session's behaviour, input by input, with no browser: every transport, close code, gap
//! and fallback path.

use super::*;
use protocol::close::{GOING_AWAY, LIVE_OFF, POLLING_ONLY, SESSION_ENDED};
use protocol::{LiveMode, Point, Update};

fn meta(epoch: &str, offset: u64) -> Meta {
    Meta::at(epoch, offset)
}

fn items(v: f64) -> Vec<Item> {
    vec![Item::Point(Point { ts: v as i64, value: v })]
}

fn snapshot(widget: &str, epoch: &str, offset: u64) -> Input {
    Input::Received(ServerMessage::Control(ControlMessage::Snapshot {
        widget_id: widget.into(),
        ts: 0,
        series: items(offset as f64),
        meta: meta(epoch, offset),
    }))
}

fn update(widget: &str, epoch: &str, offset: u64) -> Input {
    Input::Received(ServerMessage::Update(Update {
        widget_id: widget.into(),
        ts: 0,
        series: items(offset as f64),
        meta: meta(epoch, offset),
    }))
}

fn closed(code: u16) -> Input {
    Input::Closed { code, reason: String::new() }
}

fn live_with(widget: &str) -> LiveSession {
    let (mut s, _) = LiveSession::start(LiveSessionConfig::default());
    s.handle(Input::Subscribe { widget: widget.into(), topic: "t".into(), position: None }, 0.5);
    s.handle(Input::Opened, 0.5);
    s
}

fn delivered_offsets(effects: &[Effect]) -> Vec<u64> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver { delivery: Delivery::Update { meta, .. } | Delivery::Snapshot { meta, .. }, .. } => {
                Some(meta.offset)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn subscriptions_are_sent_once_the_socket_is_open() {
    let (mut s, effects) = LiveSession::start(LiveSessionConfig::default());
    assert_eq!(effects, vec![Effect::Open]);
    assert_eq!(s.status(), ConnectionStatus::Connecting);
    assert!(s.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: None }, 0.5).is_empty());
    let sent = s.handle(Input::Opened, 0.5);
    assert_eq!(
        sent,
        vec![Effect::Send(ClientMessage::Subscribe { widget_id: "w".into(), topic: "t".into(), resume_token: None })]
    );
    assert_eq!(s.status(), ConnectionStatus::Live);
}

#[test]
fn updates_pass_in_order_and_duplicates_are_dropped() {
    let mut s = live_with("w");
    let mut offsets = Vec::new();
    for input in
        [snapshot("w", "e", 3), update("w", "e", 4), update("w", "e", 4), update("w", "e", 2), update("w", "e", 5)]
    {
        offsets.extend(delivered_offsets(&s.handle(input, 0.5)));
    }
    assert_eq!(offsets, vec![3, 4, 5]);
}

#[test]
fn a_hole_is_healed_with_a_fresh_snapshot() {
    let mut s = live_with("w");
    s.handle(snapshot("w", "e", 3), 0.5);
    let effects = s.handle(update("w", "e", 6), 0.5);
    assert!(effects.contains(&Effect::Deliver { widget: "w".into(), delivery: Delivery::Gap }));
    assert!(effects.contains(&Effect::Send(ClientMessage::Subscribe {
        widget_id: "w".into(),
        topic: "t".into(),
        resume_token: None
    })));
    assert!(delivered_offsets(&s.handle(update("w", "e", 7), 0.5)).is_empty(), "held until the snapshot");
    assert_eq!(delivered_offsets(&s.handle(snapshot("w", "e", 7), 0.5)), vec![7]);
    assert_eq!(delivered_offsets(&s.handle(update("w", "e", 8), 0.5)), vec![8]);
}

#[test]
fn after_a_gap_only_the_snapshot_counts_even_in_a_new_epoch() {
    let mut s = live_with("w");
    s.handle(snapshot("w", "old", 9), 0.5);
    let gap = Input::Received(ServerMessage::Control(ControlMessage::Gap {
        widget_id: "w".into(),
        reason: "restart".into(),
    }));
    assert_eq!(s.handle(gap, 0.5), vec![Effect::Deliver { widget: "w".into(), delivery: Delivery::Gap }]);
    assert!(delivered_offsets(&s.handle(update("w", "old", 10), 0.5)).is_empty());
    assert_eq!(delivered_offsets(&s.handle(snapshot("w", "new", 2), 0.5)), vec![2]);
    assert_eq!(delivered_offsets(&s.handle(update("w", "new", 3), 0.5)), vec![3]);
}

#[test]
fn reconnecting_resubscribes_with_each_resume_token() {
    let mut s = live_with("w");
    s.handle(snapshot("w", "e", 3), 0.5);
    s.handle(update("w", "e", 4), 0.5);
    assert_eq!(s.handle(closed(1006), 0.5), vec![Effect::RetryIn(Duration::from_secs(1))]);
    assert_eq!(s.status(), ConnectionStatus::Reconnecting { attempt: 1, retry_in_secs: 1, cause: ABNORMAL });
    assert_eq!(s.handle(Input::RetryDue, 0.5), vec![Effect::Open]);
    let resent = s.handle(Input::Opened, 0.5);
    assert_eq!(
        resent,
        vec![Effect::Send(ClientMessage::Subscribe {
            widget_id: "w".into(),
            topic: "t".into(),
            resume_token: Some("e.4".into())
        })]
    );
    assert_eq!(delivered_offsets(&s.handle(update("w", "e", 5), 0.5)), vec![5], "replay continues in order");
}

#[test]
fn backoff_grows_then_goes_offline_after_ten_failures_and_retry_starts_over() {
    let (mut s, _) = LiveSession::start(LiveSessionConfig::default());
    let mut delays = Vec::new();
    for _ in 0..10 {
        match s.handle(closed(1006), 0.5).as_slice() {
            [Effect::RetryIn(d)] => delays.push(d.as_secs()),
            other => panic!("{other:?}"),
        }
        s.handle(Input::RetryDue, 0.5);
    }
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30, 30, 30]);
    assert!(s.handle(closed(1006), 0.5).is_empty());
    assert_eq!(s.status(), ConnectionStatus::Offline);
    assert_eq!(s.handle(Input::RetryNow, 0.5), vec![Effect::Open]);
    assert_eq!(s.handle(closed(1006), 0.5), vec![Effect::RetryIn(Duration::from_secs(1))], "counting anew");
}

#[test]
fn reconnecting_says_what_failed() {
    let mut s = live_with("w");
    s.handle(closed(protocol::close::SERVER_ERROR), 0.5);
    assert!(matches!(s.status(), ConnectionStatus::Reconnecting { cause: protocol::close::SERVER_ERROR, .. }));
    let mut t = live_with("w");
    t.handle(closed(GOING_AWAY), 0.5);
    assert!(matches!(t.status(), ConnectionStatus::Reconnecting { cause: GOING_AWAY, .. }));
    let busy = PollFailure { status: Some(503), code: None, retry_after: Some(2) };
    assert_eq!(busy.close_code(), protocol::close::TRY_AGAIN);
    assert_eq!(PollFailure { status: None, code: None, retry_after: None }.close_code(), ABNORMAL);
}

#[test]
fn going_away_reconnects_within_a_second_spread_by_randomness() {
    let mut a = live_with("w");
    let mut b = live_with("w");
    let [Effect::RetryIn(da)] = a.handle(closed(GOING_AWAY), 0.1)[..] else { panic!() };
    let [Effect::RetryIn(db)] = b.handle(closed(GOING_AWAY), 0.9)[..] else { panic!() };
    assert!(da < db && db <= Duration::from_secs(1), "{da:?} {db:?}");
}

#[test]
fn session_end_and_live_off_do_not_retry() {
    let mut s = live_with("w");
    assert_eq!(s.handle(closed(SESSION_ENDED), 0.5), vec![Effect::SignIn]);
    assert_eq!(s.status(), ConnectionStatus::SignedOut);
    assert!(s.handle(Input::RetryDue, 0.5).is_empty());

    let mut t = live_with("w");
    assert_eq!(t.handle(closed(LIVE_OFF), 0.5), vec![Effect::CheckModeIn(Duration::from_secs(30))], "only a check");
    assert_eq!(t.status(), ConnectionStatus::LiveOff);
    assert_eq!(t.handle(Input::RetryNow, 0.5), vec![Effect::Open], "the user may try again");
}

#[test]
fn activity_reported_before_the_socket_opens_is_sent_when_it_does() {
    let (mut s, _) = LiveSession::start(LiveSessionConfig::default());
    for detail in ["Ops", "Sales"] {
        let report = Input::Report { action: ActivityAction::OpenDashboard, detail: detail.into() };
        assert!(s.handle(report, 0.5).is_empty());
    }
    let sent = s.handle(Input::Opened, 0.5);
    let only_the_latest =
        Effect::Send(ClientMessage::Activity { action: ActivityAction::OpenDashboard, detail: "Sales".into() });
    assert_eq!(sent, vec![only_the_latest]);
    assert!(s.handle(closed(1006), 0.5).len() == 1 && s.handle(Input::RetryDue, 0.5) == vec![Effect::Open]);
    assert!(s.handle(Input::Opened, 0.5).is_empty(), "sent once");
}

#[test]
fn a_saved_position_resumes_a_new_page_where_the_old_one_stopped() {
    let (mut s, _) = LiveSession::start(LiveSessionConfig::default());
    let position = WidgetPosition { epoch: "e".into(), offset: 41, resume_token: "e.41".into() };
    s.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: Some(position) }, 0.5);
    let sent = s.handle(Input::Opened, 0.5);
    assert_eq!(
        sent,
        vec![Effect::Send(ClientMessage::Subscribe {
            widget_id: "w".into(),
            topic: "t".into(),
            resume_token: Some("e.41".into())
        })]
    );
    assert!(delivered_offsets(&s.handle(update("w", "e", 41), 0.5)).is_empty(), "already shown before the refresh");
    assert_eq!(delivered_offsets(&s.handle(update("w", "e", 42), 0.5)), vec![42]);
}

#[test]
fn pausing_closes_and_resuming_reconnects() {
    let mut s = live_with("w");
    assert_eq!(s.handle(Input::SetLive(false), 0.5), vec![Effect::Close]);
    assert!(s.handle(closed(1000), 0.5).is_empty(), "our own close is no failure");
    assert_eq!(s.status(), ConnectionStatus::Paused);
    assert!(s.handle(Input::Refresh { widget: "w".into() }, 0.5).is_empty());
    assert_eq!(s.handle(Input::SetLive(true), 0.5), vec![Effect::Open]);
}

#[test]
fn a_lost_heartbeat_leaves_live_at_once_without_waiting_for_the_close_event() {
    // On a half-open path the browser fires `close` only after its own closing handshake
    // times out: until then nothing arrives, and the pill must not say Live.
    let mut s = live_with("w");
    s.handle(snapshot("w", "e", 1), 0.5);
    let effects = s.handle(Input::HeartbeatLost, 0.5);
    assert!(matches!(effects[..], [Effect::DropSocket, Effect::RetryIn(_)]), "{effects:?}");
    assert!(matches!(s.status(), ConnectionStatus::Reconnecting { attempt: 1, .. }));
    assert_eq!(s.handle(Input::RetryDue, 0.5), vec![Effect::Open]);
    assert!(s.handle(Input::HeartbeatLost, 0.5).is_empty(), "only a live socket has a heartbeat");
}

#[test]
fn refresh_and_unsubscribe_are_sent_only_when_live() {
    let mut s = live_with("w");
    assert_eq!(
        s.handle(Input::Refresh { widget: "w".into() }, 0.5),
        vec![Effect::Send(ClientMessage::RequestUpdate { widget_id: "w".into() })]
    );
    assert!(s.handle(Input::Refresh { widget: "nope".into() }, 0.5).is_empty());
    let report = Input::Report { action: ActivityAction::OpenDashboard, detail: "Ops".into() };
    assert_eq!(
        s.handle(report.clone(), 0.5),
        vec![Effect::Send(ClientMessage::Activity { action: ActivityAction::OpenDashboard, detail: "Ops".into() })]
    );
    assert_eq!(
        s.handle(Input::Unsubscribe { widget: "w".into() }, 0.5),
        vec![Effect::Send(ClientMessage::Unsubscribe { widget_id: "w".into() })]
    );
    assert!(delivered_offsets(&s.handle(snapshot("w", "e", 1), 0.5)).is_empty(), "forgotten widget");
}

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A session on dashboard 7 with `w` subscribed at `e.41`, whose WebSocket never opened.
fn refused_websocket() -> (LiveSession, Vec<Effect>) {
    let (mut s, _) = LiveSession::start(LiveSessionConfig::default());
    s.handle(Input::SetDashboard(Some(7)), 0.5);
    let position = WidgetPosition { epoch: "e".into(), offset: 41, resume_token: "e.41".into() };
    s.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: Some(position) }, 0.5);
    let effects = s.handle(closed(ABNORMAL), 0.5);
    (s, effects)
}

fn answer(cursor: &str, messages: Vec<ServerMessage>) -> Result<PollAnswer, PollFailure> {
    let widgets = vec![protocol::PollWidget { widget_id: "w".into(), messages }];
    Ok(PollAnswer { cursor: cursor.into(), widgets, live_mode: Some(LiveMode::Live) })
}

fn message(input: Input) -> ServerMessage {
    match input {
        Input::Received(message) => message,
        other => panic!("{other:?}"),
    }
}

fn failure(status: Option<u16>, code: Option<ErrorCode>) -> PollFailure {
    PollFailure { status, code, retry_after: Some(12) }
}

#[test]
fn a_refused_websocket_falls_back_to_sse_from_the_same_positions_and_climbs_back() {
    let (mut s, effects) = refused_websocket();
    assert_eq!(effects, vec![Effect::OpenStream { dashboard: 7, query: q(&[("positions", "w:e.41")]) }]);
    assert_eq!(s.status(), ConnectionStatus::Connecting, "still the same attempt");
    assert_eq!(s.handle(Input::StreamOpened, 0.5), vec![Effect::ProbeIn(Duration::from_secs(5))]);
    assert_eq!(s.status(), ConnectionStatus::LiveSse);
    assert_eq!(delivered_offsets(&s.handle(update("w", "e", 42), 0.5)), vec![42]);
    s.handle(Input::StreamCursor("c42".into()), 0.5);

    assert_eq!(s.handle(Input::ProbeDue, 0.5), vec![Effect::Open], "the WebSocket is tried in the background");
    assert_eq!(s.handle(closed(ABNORMAL), 0.5), vec![Effect::ProbeIn(Duration::from_secs(10))]);
    assert_eq!(s.status(), ConnectionStatus::LiveSse, "a failed probe changes nothing");
    assert_eq!(s.handle(Input::ProbeDue, 0.5), vec![Effect::Open]);
    let switched = s.handle(Input::Opened, 0.5);
    assert_eq!(
        switched,
        vec![
            Effect::CloseStream,
            Effect::Send(ClientMessage::Subscribe {
                widget_id: "w".into(),
                topic: "t".into(),
                resume_token: Some("e.42".into())
            })
        ]
    );
    assert_eq!(s.status(), ConnectionStatus::Live);
    assert!(delivered_offsets(&s.handle(update("w", "e", 42), 0.5)).is_empty(), "a replayed duplicate");
    assert_eq!(delivered_offsets(&s.handle(update("w", "e", 43), 0.5)), vec![43]);
}

#[test]
fn when_the_stream_fails_too_it_polls_from_the_same_positions_and_climbs_back_through_the_stream() {
    let (mut s, _) = refused_websocket();
    let poll = s.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
    let first = Effect::Poll { dashboard: 7, query: q(&[("positions", "w:e.41")]), purpose: PollPurpose::Regular };
    assert_eq!(poll, vec![first]);
    let polled = s.handle(
        Input::Polled {
            dashboard: 7,
            purpose: PollPurpose::Regular,
            answer: answer("c1", vec![message(update("w", "e", 42))]),
        },
        0.5,
    );
    assert_eq!(s.status(), ConnectionStatus::Polling { every_secs: 30, by_operator: false });
    assert!(polled.contains(&Effect::ProbeIn(Duration::from_secs(5))));
    assert!(polled.contains(&Effect::PollIn(Duration::from_secs(30))));
    assert_eq!(delivered_offsets(&polled), vec![42]);
    let next = Effect::Poll { dashboard: 7, query: q(&[("since", "c1")]), purpose: PollPurpose::Regular };
    assert_eq!(s.handle(Input::PollDue, 0.5), vec![next], "the server's cursor from then on");

    assert_eq!(s.handle(Input::ProbeDue, 0.5), vec![Effect::Open]);
    let stream = s.handle(closed(ABNORMAL), 0.5);
    assert_eq!(stream, vec![Effect::OpenStream { dashboard: 7, query: q(&[("lastEventId", "c1")]) }]);
    assert_eq!(s.handle(Input::StreamOpened, 0.5), vec![Effect::ProbeIn(Duration::from_secs(5))]);
    assert_eq!(s.status(), ConnectionStatus::LiveSse);
    let late = Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: answer("c2", vec![]) };
    assert!(s.handle(late, 0.5).is_empty(), "a poll of the transport it left is ignored");
    assert!(s.handle(Input::PollDue, 0.5).is_empty());
}

#[test]
fn only_when_every_transport_fails_does_the_attempt_fail_and_the_next_starts_with_the_websocket() {
    let (mut s, _) = refused_websocket();
    s.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
    let failed = Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: Err(failure(None, None)) };
    assert_eq!(s.handle(failed, 0.5), vec![Effect::RetryIn(Duration::from_secs(1))]);
    assert_eq!(s.status(), ConnectionStatus::Reconnecting { attempt: 1, retry_in_secs: 1, cause: ABNORMAL });
    assert_eq!(s.handle(Input::RetryDue, 0.5), vec![Effect::Open]);
    assert_eq!(s.transport(), Transport::WebSocket);
}

#[test]
fn a_websocket_that_drops_twice_before_delivering_anything_counts_as_blocked() {
    let (mut s, _) = LiveSession::start(LiveSessionConfig::default());
    s.handle(Input::SetDashboard(Some(7)), 0.5);
    s.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: None }, 0.5);
    s.handle(Input::Opened, 0.5);
    assert!(matches!(s.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_)]), "once may be bad luck");
    s.handle(Input::RetryDue, 0.5);
    s.handle(Input::Opened, 0.5);
    assert!(matches!(s.handle(closed(ABNORMAL), 0.5)[..], [Effect::OpenStream { dashboard: 7, .. }]));

    let mut healthy = live_with("w");
    healthy.handle(Input::SetDashboard(Some(7)), 0.5);
    healthy.handle(snapshot("w", "e", 1), 0.5);
    assert!(matches!(healthy.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_)]));
    healthy.handle(Input::RetryDue, 0.5);
    healthy.handle(Input::Opened, 0.5);
    healthy.handle(update("w", "e", 2), 0.5);
    assert!(matches!(healthy.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_)]), "it delivered");
}

#[test]
fn on_a_fallback_subscriptions_refreshes_and_holes_fetch_their_widgets_and_reports_wait() {
    let (mut s, _) = refused_websocket();
    s.handle(Input::StreamOpened, 0.5);
    let new = s.handle(Input::Subscribe { widget: "x".into(), topic: "u".into(), position: None }, 0.5);
    assert_eq!(new, vec![fetch(&["x"], &[("widgets", "x")])]);
    assert!(delivered_offsets(&s.handle(update("x", "e", 5), 0.5)).is_empty(), "held until its snapshot");
    let got =
        Input::Polled { dashboard: 7, purpose: PollPurpose::Widgets(vec!["x".into()]), answer: answer("c", vec![]) };
    assert_eq!(s.handle(got, 0.5), vec![Effect::FetchIn(Duration::from_secs(1))], "no snapshot yet: later");
    assert_eq!(s.handle(Input::FetchDue, 0.5), vec![fetch(&["x"], &[("widgets", "x")])]);
    assert_eq!(s.handle(Input::Refresh { widget: "w".into() }, 0.5), vec![fetch(&["w"], &[("widgets", "w")])]);
    let report = Input::Report { action: ActivityAction::OpenDashboard, detail: "Ops".into() };
    assert!(s.handle(report, 0.5).is_empty(), "kept for the WebSocket");
    assert!(s.handle(Input::Unsubscribe { widget: "x".into() }, 0.5).is_empty());
}

fn fetch(widgets: &[&str], query: &[(&str, &str)]) -> Effect {
    Effect::Poll {
        dashboard: 7,
        query: q(query),
        purpose: PollPurpose::Widgets(widgets.iter().map(|w| (*w).to_owned()).collect()),
    }
}

fn fetched(widget: &str, messages: Vec<Input>) -> Input {
    let messages = messages.into_iter().map(message).collect();
    let widgets = vec![protocol::PollWidget { widget_id: widget.into(), messages }];
    Input::Polled {
        dashboard: 7,
        purpose: PollPurpose::Widgets(vec![widget.into()]),
        answer: Ok(PollAnswer { cursor: "c".into(), widgets, live_mode: Some(LiveMode::Live) }),
    }
}

/// A session on SSE (dashboard 7) with `w` at `e.41`.
fn on_sse() -> LiveSession {
    let (mut s, _) = refused_websocket();
    s.handle(Input::StreamOpened, 0.5);
    s
}

#[test]
fn a_refresh_asked_during_an_outage_is_made_when_the_socket_opens() {
    // Before: the refresh was dropped while Reconnecting and the socket resumed from the
    // token; a tab's widget that the hub had marked as waiting for a snapshot froze for good.
    let mut s = live_with("w");
    s.handle(snapshot("w", "e", 1), 0.5);
    s.handle(closed(ABNORMAL), 0.5);
    assert!(s.handle(Input::Refresh { widget: "w".into() }, 0.5).is_empty());
    s.handle(Input::RetryDue, 0.5);
    let fresh = ClientMessage::Subscribe { widget_id: "w".into(), topic: "t".into(), resume_token: None };
    assert_eq!(s.handle(Input::Opened, 0.5), vec![Effect::Send(fresh.clone())]);
    assert_eq!(delivered_offsets(&s.handle(snapshot("w", "e", 9), 0.5)), vec![9]);
    s.handle(closed(ABNORMAL), 0.5);
    s.handle(Input::RetryDue, 0.5);
    let resumed = s.handle(Input::Opened, 0.5);
    assert!(matches!(&resumed[..], [Effect::Send(ClientMessage::Subscribe { resume_token: Some(_), .. })]));
}

#[test]
fn a_snapshot_lost_with_the_socket_is_asked_for_again_whether_a_gap_or_a_refresh_wanted_it() {
    let mut s = live_with("w");
    s.handle(snapshot("w", "e", 1), 0.5);
    let gap =
        Input::Received(ServerMessage::Control(ControlMessage::Gap { widget_id: "w".into(), reason: "lagged".into() }));
    s.handle(gap, 0.5);
    s.handle(closed(ABNORMAL), 0.5);
    s.handle(Input::RetryDue, 0.5);
    let fresh = Effect::Send(ClientMessage::Subscribe { widget_id: "w".into(), topic: "t".into(), resume_token: None });
    assert_eq!(s.handle(Input::Opened, 0.5), vec![fresh.clone()], "resuming would replay updates it skips");

    let mut t = live_with("w");
    t.handle(snapshot("w", "e", 1), 0.5);
    let asked = t.handle(Input::Refresh { widget: "w".into() }, 0.5);
    assert_eq!(asked, vec![Effect::Send(ClientMessage::RequestUpdate { widget_id: "w".into() })]);
    assert_eq!(delivered_offsets(&t.handle(update("w", "e", 2), 0.5)), vec![2], "the view stays live meanwhile");
    t.handle(closed(ABNORMAL), 0.5);
    t.handle(Input::RetryDue, 0.5);
    assert_eq!(t.handle(Input::Opened, 0.5), vec![fresh]);
    // A refresh the server refuses (too many) asks for nothing more.
    let mut u = live_with("w");
    u.handle(snapshot("w", "e", 1), 0.5);
    u.handle(Input::Refresh { widget: "w".into() }, 0.5);
    let refused = ServerMessage::Control(ControlMessage::Error {
        code: ErrorCode::RateLimited,
        message: "slow down".into(),
        widget_id: Some("w".into()),
    });
    u.handle(Input::Received(refused), 0.5);
    u.handle(closed(ABNORMAL), 0.5);
    u.handle(Input::RetryDue, 0.5);
    assert!(matches!(
        &u.handle(Input::Opened, 0.5)[..],
        [Effect::Send(ClientMessage::Subscribe { resume_token: Some(_), .. })]
    ));
}

#[test]
fn a_subscription_the_topic_rules_end_starts_afresh_and_applies_nothing_after_the_refusal() {
    let mut s = live_with("w");
    s.handle(snapshot("w", "e", 1), 0.5);
    let forbidden = ServerMessage::Control(ControlMessage::Error {
        code: ErrorCode::Forbidden,
        message: "a viewer may not read topic t".into(),
        widget_id: Some("w".into()),
    });
    let told = s.handle(Input::Received(forbidden), 0.5);
    assert!(
        told.iter()
            .any(|e| matches!(e, Effect::Deliver { delivery: Delivery::Error { code: ErrorCode::Forbidden, .. }, .. })),
        "{told:?}"
    );
    assert!(delivered_offsets(&s.handle(update("w", "e", 2), 0.5)).is_empty(), "nothing follows a refusal");
    s.handle(closed(ABNORMAL), 0.5);
    s.handle(Input::RetryDue, 0.5);
    let fresh = Effect::Send(ClientMessage::Subscribe { widget_id: "w".into(), topic: "t".into(), resume_token: None });
    assert_eq!(s.handle(Input::Opened, 0.5), vec![fresh], "asked again from the start, not resumed");
}

#[test]
fn on_a_fallback_what_the_stream_brings_while_a_snapshot_is_fetched_follows_it() {
    // Before: those updates were dropped, and the next one looked like a hole: gap, fetch, gap.
    let mut s = on_sse();
    assert_eq!(s.handle(Input::Refresh { widget: "w".into() }, 0.5), vec![fetch(&["w"], &[("widgets", "w")])]);
    for offset in 42..=44 {
        assert!(s.handle(update("w", "e", offset), 0.5).is_empty());
    }
    let healed = s.handle(fetched("w", vec![snapshot("w", "e", 42)]), 0.5);
    assert_eq!(delivered_offsets(&healed), vec![42, 43, 44]);
    assert_eq!(delivered_offsets(&s.handle(update("w", "e", 45), 0.5)), vec![45]);
}

#[test]
fn on_a_fallback_a_hole_fetches_the_missed_updates_and_the_held_ones_follow_them() {
    let mut s = on_sse();
    let hole = s.handle(update("w", "e", 45), 0.5);
    assert_eq!(hole, vec![fetch(&["w"], &[("widgets", "w"), ("positions", "w:e.41")])], "no gap: only a fetch");
    assert!(s.handle(update("w", "e", 46), 0.5).is_empty(), "one fetch at a time");
    let missed = (42..=44).map(|o| update("w", "e", o)).collect();
    assert_eq!(delivered_offsets(&s.handle(fetched("w", missed), 0.5)), vec![42, 43, 44, 45, 46]);
    // A snapshot the fetch brought late, older than what the stream applied since, is dropped.
    assert!(delivered_offsets(&s.handle(snapshot("w", "e", 45), 0.5)).is_empty());
    assert_eq!(delivered_offsets(&s.handle(update("w", "e", 47), 0.5)), vec![47]);
}

#[test]
fn on_a_fallback_what_is_held_is_bounded_and_a_failed_fetch_is_tried_again() {
    let mut s = on_sse();
    s.handle(Input::Refresh { widget: "w".into() }, 0.5);
    for offset in 100..100 + 2 * AHEAD_MAX as u64 {
        s.handle(update("w", "e", offset), 0.5);
    }
    assert_eq!(s.subscriptions()["w"].ahead.len(), AHEAD_MAX);
    let failed = Input::Polled {
        dashboard: 7,
        purpose: PollPurpose::Widgets(vec!["w".into()]),
        answer: Err(failure(None, None)),
    };
    assert_eq!(s.handle(failed.clone(), 0.5), vec![Effect::FetchIn(Duration::from_secs(1))]);
    assert_eq!(s.handle(Input::FetchDue, 0.5), vec![fetch(&["w"], &[("widgets", "w")])]);
    assert_eq!(s.handle(failed, 0.5), vec![Effect::FetchIn(Duration::from_secs(2))], "spaced out");
    let healed = s.handle(fetched("w", vec![snapshot("w", "e", 99)]), 0.5);
    assert_eq!(delivered_offsets(&healed).len(), 1 + AHEAD_MAX);
}

#[test]
fn a_dashboard_switch_while_the_stream_opens_opens_the_new_dashboards_stream() {
    let (mut s, effects) = refused_websocket();
    assert!(matches!(effects[..], [Effect::OpenStream { dashboard: 7, .. }]));
    let moved = s.handle(Input::SetDashboard(Some(8)), 0.5);
    assert_eq!(
        moved,
        vec![Effect::CloseStream, Effect::OpenStream { dashboard: 8, query: q(&[("positions", "w:e.41")]) }]
    );
    // A poll of the old dashboard that answers late is not taken for the new one.
    let (mut p, _) = refused_websocket();
    p.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
    p.handle(Input::SetDashboard(Some(8)), 0.5);
    let late = Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: answer("c1", vec![]) };
    assert!(p.handle(late, 0.5).is_empty());
    assert_eq!(p.status(), ConnectionStatus::Connecting);
}

#[test]
fn a_hub_hears_when_the_websocket_does_not_get_through() {
    let config = LiveSessionConfig { report_refusals: true, ..LiveSessionConfig::default() };
    let (mut s, _) = LiveSession::start(config);
    s.handle(Input::Opened, 0.5);
    s.handle(snapshot("w", "e", 1), 0.5);
    assert!(matches!(s.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_)]), "a drop of a live socket");
    s.handle(Input::RetryDue, 0.5);
    assert!(matches!(s.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_), Effect::WebSocketRefused]));
}

#[test]
fn polling_follows_widget_intervals_and_the_answers_status() {
    let (mut s, _) = refused_websocket();
    s.handle(Input::SetInterval { widget: "w".into(), secs: Some(5) }, 0.5);
    s.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
    let polled =
        s.handle(Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: answer("c1", vec![]) }, 0.5);
    assert!(polled.contains(&Effect::PollIn(Duration::from_secs(5))));
    assert_eq!(s.status(), ConnectionStatus::Polling { every_secs: 5, by_operator: false });
    let limited = Input::Polled {
        dashboard: 7,
        purpose: PollPurpose::Regular,
        answer: Err(failure(Some(429), Some(ErrorCode::LimitExceeded))),
    };
    assert_eq!(s.handle(limited, 0.5), vec![Effect::PollIn(Duration::from_secs(12))], "waits as told");
    let off = Input::Polled {
        dashboard: 7,
        purpose: PollPurpose::Regular,
        answer: Err(failure(Some(403), Some(ErrorCode::LiveDashboardsOff))),
    };
    assert_eq!(s.handle(off, 0.5), vec![Effect::CheckModeIn(Duration::from_secs(30))]);
    assert_eq!(s.status(), ConnectionStatus::LiveOff);

    let (mut t, _) = refused_websocket();
    t.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
    let signed_out =
        Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: Err(failure(Some(401), None)) };
    assert_eq!(t.handle(signed_out, 0.5), vec![Effect::SignIn]);
}

#[test]
fn the_streams_close_event_means_what_the_websockets_close_code_means() {
    let (mut s, _) = refused_websocket();
    s.handle(Input::StreamOpened, 0.5);
    let [Effect::RetryIn(delay)] = s.handle(Input::StreamClosed { code: GOING_AWAY }, 0.3)[..] else { panic!() };
    assert!(delay <= Duration::from_secs(1));
    assert_eq!(s.handle(Input::RetryDue, 0.5), vec![Effect::Open]);
    s.handle(closed(ABNORMAL), 0.5);
    s.handle(Input::StreamOpened, 0.5);
    assert_eq!(s.handle(Input::StreamClosed { code: SESSION_ENDED }, 0.5), vec![Effect::SignIn]);
    assert_eq!(s.status(), ConnectionStatus::SignedOut);
}

#[test]
fn another_dashboard_on_a_fallback_reopens_the_stream_and_pausing_closes_it() {
    let (mut s, _) = refused_websocket();
    s.handle(Input::StreamOpened, 0.5);
    s.handle(Input::StreamCursor("c7".into()), 0.5);
    let moved = s.handle(Input::SetDashboard(Some(8)), 0.5);
    assert_eq!(
        moved,
        vec![Effect::CloseStream, Effect::OpenStream { dashboard: 8, query: q(&[("positions", "w:e.41")]) }],
        "the old dashboard's cursor means nothing here"
    );
    s.handle(Input::StreamOpened, 0.5);
    assert_eq!(s.handle(Input::SetLive(false), 0.5), vec![Effect::CloseStream]);
    assert_eq!(s.status(), ConnectionStatus::Paused);
    assert!(s.handle(Input::StreamClosed { code: ABNORMAL }, 0.5).is_empty(), "its own close");
    assert_eq!(s.handle(Input::SetLive(true), 0.5), vec![Effect::Open], "the WebSocket first again");
}

fn answer_in(cursor: &str, mode: LiveMode, messages: Vec<ServerMessage>) -> Result<PollAnswer, PollFailure> {
    let widgets = vec![protocol::PollWidget { widget_id: "w".into(), messages }];
    Ok(PollAnswer { cursor: cursor.into(), widgets, live_mode: Some(mode) })
}

fn regular(answer: Result<PollAnswer, PollFailure>) -> Input {
    Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer }
}

/// A live session on dashboard 7 whose `w` holds `e.41`.
fn live_on_dashboard() -> LiveSession {
    let (mut s, _) = LiveSession::start(LiveSessionConfig::default());
    s.handle(Input::SetDashboard(Some(7)), 0.5);
    s.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: None }, 0.5);
    s.handle(Input::Opened, 0.5);
    s.handle(snapshot("w", "e", 41), 0.5);
    s
}

#[test]
fn an_operator_choice_of_polling_moves_a_live_socket_to_polls_from_its_positions() {
    let mut s = live_on_dashboard();
    let first = Effect::Poll { dashboard: 7, query: q(&[("positions", "w:e.41")]), purpose: PollPurpose::Regular };
    assert_eq!(s.handle(closed(POLLING_ONLY), 0.5), vec![first], "no backoff, no stream");
    let polled = s.handle(regular(answer_in("c1", LiveMode::Polling, vec![message(update("w", "e", 42))])), 0.5);
    assert_eq!(delivered_offsets(&polled), vec![42], "nothing lost");
    assert!(polled.contains(&Effect::PollIn(Duration::from_secs(30))));
    assert!(!polled.iter().any(|e| matches!(e, Effect::ProbeIn(_))), "no probe: {polled:?}");
    assert_eq!(s.status(), ConnectionStatus::Polling { every_secs: 30, by_operator: true });
    assert!(s.handle(Input::ProbeDue, 0.5).is_empty(), "a probe scheduled before does nothing");
    let next = Effect::Poll { dashboard: 7, query: q(&[("since", "c1")]), purpose: PollPurpose::Regular };
    assert_eq!(s.handle(Input::PollDue, 0.5), vec![next]);
}

#[test]
fn an_open_stream_closed_for_polling_polls_from_its_cursor() {
    let (mut s, _) = refused_websocket();
    s.handle(Input::StreamOpened, 0.5);
    s.handle(Input::StreamCursor("c7".into()), 0.5);
    let poll = s.handle(Input::StreamClosed { code: POLLING_ONLY }, 0.5);
    assert_eq!(poll, vec![Effect::Poll { dashboard: 7, query: q(&[("since", "c7")]), purpose: PollPurpose::Regular }]);
}

#[test]
fn a_fallback_poll_that_learns_the_operator_chose_polling_stops_probing() {
    let (mut s, _) = refused_websocket();
    s.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
    let polled = s.handle(regular(answer_in("c1", LiveMode::Live, vec![])), 0.5);
    assert!(polled.contains(&Effect::ProbeIn(Duration::from_secs(5))), "the network's fallback probes");
    s.handle(regular(answer_in("c2", LiveMode::Polling, vec![])), 0.5);
    assert_eq!(s.status(), ConnectionStatus::Polling { every_secs: 30, by_operator: true });
    assert!(s.handle(Input::ProbeDue, 0.5).is_empty());
    // A probe already under way when the mode changed is told 4405 too: it stops there.
    let (mut t, _) = refused_websocket();
    t.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
    t.handle(regular(answer_in("c1", LiveMode::Live, vec![])), 0.5);
    assert_eq!(t.handle(Input::ProbeDue, 0.5), vec![Effect::Open]);
    assert!(t.handle(closed(POLLING_ONLY), 0.5).is_empty(), "no stream tried, no new probe");
    assert!(t.handle(Input::ProbeDue, 0.5).is_empty());
}

#[test]
fn when_polling_is_lifted_the_page_climbs_to_the_websocket_from_its_positions() {
    let mut s = live_on_dashboard();
    s.handle(closed(POLLING_ONLY), 0.5);
    s.handle(regular(answer_in("c1", LiveMode::Polling, vec![message(update("w", "e", 42))])), 0.5);
    let lifted = s.handle(regular(answer_in("c2", LiveMode::Live, vec![message(update("w", "e", 43))])), 0.5);
    assert_eq!(delivered_offsets(&lifted), vec![43], "the answer's messages first");
    assert_eq!(lifted.last(), Some(&Effect::Open));
    assert!(!lifted.iter().any(|e| matches!(e, Effect::PollIn(_))), "no further poll: {lifted:?}");
    assert_eq!(s.status(), ConnectionStatus::Connecting);
    let resubscribed = s.handle(Input::Opened, 0.5);
    assert_eq!(
        resubscribed,
        vec![Effect::Send(ClientMessage::Subscribe {
            widget_id: "w".into(),
            topic: "t".into(),
            resume_token: Some("e.43".into())
        })]
    );
    assert_eq!(s.status(), ConnectionStatus::Live);
    assert!(s.handle(Input::PollDue, 0.5).is_empty(), "the poll timer left behind does nothing");
}

#[test]
fn live_off_checks_the_mode_again_and_comes_back() {
    let mut s = live_on_dashboard();
    let check_in = Effect::CheckModeIn(Duration::from_secs(30));
    assert_eq!(s.handle(closed(LIVE_OFF), 0.5), vec![check_in.clone()]);
    assert_eq!(s.handle(Input::ModeCheckDue, 0.5), vec![Effect::CheckMode]);
    assert_eq!(s.handle(Input::ModeIs(ModeCheck::Mode(LiveMode::Off)), 0.5), vec![check_in.clone()]);
    assert_eq!(s.handle(Input::ModeIs(ModeCheck::Unknown), 0.5), vec![check_in.clone()], "asked again");
    assert_eq!(s.status(), ConnectionStatus::LiveOff);
    assert_eq!(s.handle(Input::ModeIs(ModeCheck::Mode(LiveMode::Live)), 0.5), vec![Effect::Open]);
    assert_eq!(s.status(), ConnectionStatus::Connecting);
    assert!(s.handle(Input::ModeCheckDue, 0.5).is_empty(), "a check left behind does nothing");

    let mut t = live_on_dashboard();
    t.handle(closed(LIVE_OFF), 0.5);
    let poll = t.handle(Input::ModeIs(ModeCheck::Mode(LiveMode::Polling)), 0.5);
    assert_eq!(
        poll,
        vec![Effect::Poll { dashboard: 7, query: q(&[("positions", "w:e.41")]), purpose: PollPurpose::Regular }],
        "straight to polls, no refused socket first"
    );

    let mut u = live_on_dashboard();
    u.handle(closed(LIVE_OFF), 0.5);
    assert_eq!(u.handle(Input::ModeIs(ModeCheck::SignedOut), 0.5), vec![Effect::SignIn]);
}

#[test]
fn a_hub_told_to_poll_hands_its_tabs_over() {
    let config = LiveSessionConfig { report_refusals: true, ..LiveSessionConfig::default() };
    let (mut s, _) = LiveSession::start(config);
    s.handle(Input::Opened, 0.5);
    assert_eq!(s.handle(closed(POLLING_ONLY), 0.5), vec![Effect::PollingChosen], "no retry, no backoff");
    // What its tabs show until each polls on its own: the truth, not "off" or "reconnecting".
    assert_eq!(s.status(), ConnectionStatus::Polling { every_secs: 30, by_operator: true });
    assert!(s.handle(Input::PollDue, 0.5).is_empty() && s.handle(Input::ProbeDue, 0.5).is_empty());

    let mut page = live_with("w"); // a page with no dashboard to poll
    assert_eq!(page.handle(closed(POLLING_ONLY), 0.5), vec![Effect::CheckModeIn(Duration::from_secs(30))]);
    assert_eq!(page.status(), ConnectionStatus::LiveOff);
    page.handle(Input::ModeCheckDue, 0.5);
    assert_eq!(
        page.handle(Input::ModeIs(ModeCheck::Mode(LiveMode::Polling)), 0.5),
        vec![Effect::CheckModeIn(Duration::from_secs(30))],
        "nothing it can do but ask again"
    );
    assert_eq!(page.handle(Input::ModeIs(ModeCheck::Mode(LiveMode::Live)), 0.5), vec![Effect::Open]);
}

#[test]
fn a_probe_refused_for_polling_while_on_the_stream_is_only_a_failed_probe() {
    // The stream is the server's to close if the tenant polls; a probe's answer alone (it may come
    // from a node that has not heard of a switch back to live yet) does not stop the probing.
    let (mut s, _) = refused_websocket();
    s.handle(Input::StreamOpened, 0.5);
    assert_eq!(s.handle(Input::ProbeDue, 0.5), vec![Effect::Open]);
    assert_eq!(s.handle(closed(POLLING_ONLY), 0.5), vec![Effect::ProbeIn(Duration::from_secs(10))]);
    assert_eq!(s.status(), ConnectionStatus::LiveSse);
}

#[test]
fn a_page_that_could_not_poll_polls_once_it_shows_a_dashboard() {
    let mut page = live_with("w"); // no dashboard yet
    page.handle(closed(POLLING_ONLY), 0.5);
    assert_eq!(page.status(), ConnectionStatus::LiveOff);
    let poll = page.handle(Input::SetDashboard(Some(7)), 0.5);
    assert!(matches!(poll[..], [Effect::Poll { dashboard: 7, .. }]), "{poll:?}");
    assert_eq!(page.status(), ConnectionStatus::Connecting);
}

#[test]
fn the_polls_and_mode_checks_of_pages_closed_by_one_switch_are_spread() {
    let check_after = |random: f64| match live_with("w").handle(closed(LIVE_OFF), random)[..] {
        [Effect::CheckModeIn(after)] => after,
        ref other => panic!("{other:?}"),
    };
    assert_eq!(check_after(0.0), Duration::from_secs(27));
    assert!((Duration::from_secs(32)..Duration::from_secs(33)).contains(&check_after(0.999)));
    let mut s = live_on_dashboard();
    s.handle(closed(POLLING_ONLY), 0.5);
    let polled = s.handle(regular(answer_in("c1", LiveMode::Polling, vec![])), 0.0);
    assert!(polled.contains(&Effect::PollIn(Duration::from_secs(27))), "{polled:?}");
}
