//! The transport half of [`LiveSession`]: which transport an attempt uses, falling back from the
//! WebSocket to the SSE stream to polling and probing the faster ones again, what each close code
//! means, and the backoff between attempts.

use super::*;

impl LiveSession {
    pub(super) fn is_live(&self) -> bool {
        self.status == ConnectionStatus::Live
    }

    pub(super) fn on_fallback(&self) -> bool {
        matches!(self.status, ConnectionStatus::LiveSse | ConnectionStatus::Polling { .. })
    }

    /// A new attempt, from the top of the ladder: the WebSocket.
    pub(super) fn begin_attempt(&mut self) -> Vec<Effect> {
        self.status = ConnectionStatus::Connecting;
        self.transport = Transport::WebSocket;
        self.probing = None;
        vec![Effect::Open]
    }

    /// Closes whatever is open or being tried (the live switch went off).
    pub(super) fn stop_transport(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        let socket_open = self.is_live() || self.probing == Some(Transport::WebSocket);
        if socket_open || (self.status == ConnectionStatus::Connecting && self.transport == Transport::WebSocket) {
            effects.push(Effect::Close);
        }
        if self.status == ConnectionStatus::LiveSse
            || self.probing == Some(Transport::Sse)
            || (self.status == ConnectionStatus::Connecting && self.transport == Transport::Sse)
        {
            effects.push(Effect::CloseStream);
        }
        self.probing = None;
        effects
    }

    pub(super) fn on_socket_opened(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.on_fallback() {
            // A probe got through: leave the fallback.
            if self.status == ConnectionStatus::LiveSse {
                effects.push(Effect::CloseStream);
            }
        } else if self.status != ConnectionStatus::Connecting || self.transport != Transport::WebSocket {
            return effects; // a socket we no longer want (the driver closes it with the next Open)
        }
        self.status = ConnectionStatus::Live;
        self.transport = Transport::WebSocket;
        self.polling_chosen = false; // the server lets pushes in again
        self.failed_attempts = 0;
        self.failed_probes = 0;
        self.probing = None;
        self.cursor = None;
        self.socket_delivered = false;
        self.fetch_scheduled = false;
        for sub in self.subscriptions.values_mut() {
            // The socket replays from each position: what a fallback held or fetched comes again.
            sub.ahead.clear();
            sub.fetching = false;
        }
        effects.extend(self.subscriptions.iter().map(|(widget, sub)| Effect::Send(subscribe(widget, sub))));
        if let Some((action, detail)) = self.pending_report.take() {
            effects.push(Effect::Send(ClientMessage::Activity { action, detail }));
        }
        effects
    }

    pub(super) fn on_socket_closed(&mut self, code: u16, random: f64) -> Vec<Effect> {
        if self.probing == Some(Transport::WebSocket)
            && Reconnect::after(code) == Reconnect::Poll
            && matches!(self.status, ConnectionStatus::Polling { .. })
        {
            // Polling is the operator's choice: no faster transport is tried until a poll answer
            // says it was lifted. (On the stream, the server closes the stream itself if so.)
            self.probing = None;
            self.polling_chosen = true;
            return vec![];
        }
        if self.probing == Some(Transport::WebSocket) {
            // The faster transport still does not get through; on polling, try the stream next.
            if matches!(self.status, ConnectionStatus::Polling { .. })
                && let Some(dashboard) = self.dashboard
            {
                self.probing = Some(Transport::Sse);
                return vec![Effect::OpenStream { dashboard, query: self.stream_query() }];
            }
            return self.probe_failed(random);
        }
        if self.transport != Transport::WebSocket {
            return vec![]; // a socket of an earlier attempt
        }
        let was_open = self.is_live();
        if was_open && !self.socket_delivered && Reconnect::after(code) == Reconnect::WithBackoff {
            self.quiet_drops += 1;
        } else if was_open {
            self.quiet_drops = 0;
        }
        match (self.status, Reconnect::after(code)) {
            // We closed it ourselves, or nothing more is to be done.
            (ConnectionStatus::Paused | ConnectionStatus::SignedOut | ConnectionStatus::Offline, _) => vec![],
            (_, Reconnect::SignIn) => self.signed_out(),
            (_, Reconnect::Stop) => self.live_off(random),
            (_, Reconnect::Poll) => self.poll_by_choice(random),
            (_, Reconnect::Spread) => self.going_away(random),
            _ if (!was_open || self.quiet_drops >= 2) && self.dashboard.is_some() => {
                // The WebSocket does not get through: the same attempt tries the stream.
                self.quiet_drops = 0;
                self.try_stream()
            }
            _ if self.config.report_refusals && (!was_open || self.quiet_drops >= 2) => {
                let mut effects = self.attempt_failed(code, random);
                effects.push(Effect::WebSocketRefused);
                effects
            }
            _ => self.attempt_failed(code, random),
        }
    }

    pub(super) fn try_stream(&mut self) -> Vec<Effect> {
        let Some(dashboard) = self.dashboard else { return vec![] };
        self.status = ConnectionStatus::Connecting;
        self.transport = Transport::Sse;
        vec![Effect::OpenStream { dashboard, query: self.stream_query() }]
    }

    pub(super) fn on_stream_opened(&mut self) -> Vec<Effect> {
        let switching = self.probing == Some(Transport::Sse);
        let connecting = self.status == ConnectionStatus::Connecting && self.transport == Transport::Sse;
        if !switching && !connecting {
            return vec![];
        }
        self.probing = None;
        self.transport = Transport::Sse;
        self.status = ConnectionStatus::LiveSse;
        self.polling_chosen = false; // the server lets pushes in again
        self.failed_attempts = 0;
        if switching {
            self.failed_probes = 0;
        }
        let mut effects = self.schedule_probe();
        effects.extend(self.heal());
        effects
    }

    pub(super) fn on_stream_closed(&mut self, code: u16, random: f64) -> Vec<Effect> {
        if self.probing == Some(Transport::Sse) && Reconnect::after(code) == Reconnect::Poll {
            self.probing = None;
            self.polling_chosen = true;
            return vec![];
        }
        if self.probing == Some(Transport::Sse) {
            return self.probe_failed(random);
        }
        if self.transport != Transport::Sse {
            return vec![];
        }
        let was_open = self.status == ConnectionStatus::LiveSse;
        match (self.status, Reconnect::after(code)) {
            (ConnectionStatus::Paused | ConnectionStatus::SignedOut | ConnectionStatus::Offline, _) => vec![],
            (_, Reconnect::SignIn) => self.signed_out(),
            (_, Reconnect::Stop) => self.live_off(random),
            (_, Reconnect::Poll) => self.poll_by_choice(random),
            (_, Reconnect::Spread) => self.going_away(random),
            _ if !was_open => {
                // Nor does the stream: poll.
                self.transport = Transport::Polling;
                self.regular_poll()
            }
            _ => self.attempt_failed(code, random),
        }
    }

    pub(super) fn on_polled(
        &mut self,
        purpose: PollPurpose,
        answer: Result<PollAnswer, PollFailure>,
        random: f64,
    ) -> Vec<Effect> {
        let regular = purpose == PollPurpose::Regular;
        if regular && self.transport != Transport::Polling {
            return vec![]; // a poll of a transport we left
        }
        let answer = match (answer, &purpose) {
            (Ok(answer), _) => answer,
            (Err(failure), PollPurpose::Widgets(widgets)) => {
                if failure.status == Some(401) {
                    return self.signed_out();
                }
                // Tried again a little later (the widget keeps waiting, and says so by not moving).
                return self.fetched(widgets);
            }
            (Err(failure), PollPurpose::Regular) => return self.poll_failed(failure, random),
        };
        let mut effects = Vec::new();
        let first_regular = regular && self.status == ConnectionStatus::Connecting;
        // A regular answer says the tenant's mode (a widget's fetch is not trusted with it: it may
        // come from a node that has not heard of a switch yet): `live` while polling by choice lifts
        // the choice.
        let mode = if regular { answer.live_mode } else { None };
        let lifted = self.polling_chosen && mode == Some(LiveMode::Live);
        match mode {
            Some(LiveMode::Polling) => self.polling_chosen = true, // a probe already scheduled finds nothing to do
            Some(LiveMode::Live) => self.polling_chosen = false,
            _ => {}
        }
        if regular {
            if !matches!(self.status, ConnectionStatus::Polling { .. } | ConnectionStatus::Connecting) {
                return vec![];
            }
            let first = self.status == ConnectionStatus::Connecting;
            let every_secs = self.poll_interval().as_secs() as u32;
            self.status = ConnectionStatus::Polling { every_secs, by_operator: self.polling_chosen };
            self.failed_attempts = 0;
            self.cursor = Some(answer.cursor);
            if first {
                effects.extend(self.schedule_probe());
            }
            if !lifted {
                // Spread a little, so that pages moved to polling at the same instant (by one
                // switch) do not stay in step.
                effects.push(Effect::PollIn(jittered(self.poll_interval(), random)));
            }
        }
        for widget in answer.widgets {
            for message in widget.messages {
                effects.extend(self.on_message(message));
            }
        }
        match purpose {
            PollPurpose::Regular if first_regular => effects.extend(self.heal()),
            PollPurpose::Regular => {}
            PollPurpose::Widgets(widgets) => effects.extend(self.fetched(&widgets)),
        }
        if lifted {
            // Back up the ladder from the positions this answer left: the WebSocket resubscribes
            // with each widget's resume token.
            effects.extend(self.begin_attempt());
        }
        effects
    }

    /// The server closed a connection because the tenant polls (4405): poll from the positions
    /// held (the socket's resume tokens, or the stream's cursor), and probe nothing. A session
    /// without a dashboard cannot poll: the hub of shared tabs hands its tabs connections of their
    /// own (which poll), anything else waits like a page whose live updates are off.
    pub(super) fn poll_by_choice(&mut self, random: f64) -> Vec<Effect> {
        let mut effects = match self.probing.take() {
            Some(Transport::WebSocket) => vec![Effect::Close],
            Some(Transport::Sse) => vec![Effect::CloseStream],
            _ => vec![],
        };
        self.polling_chosen = true;
        if self.dashboard.is_none() && self.config.report_refusals {
            let every_secs = self.poll_interval().as_secs() as u32;
            self.status = ConnectionStatus::Polling { every_secs, by_operator: true };
            effects.push(Effect::PollingChosen);
            return effects;
        }
        if self.dashboard.is_none() {
            effects.extend(self.live_off(random));
            return effects;
        }
        self.status = ConnectionStatus::Connecting;
        self.transport = Transport::Polling;
        effects.extend(self.regular_poll());
        effects
    }

    /// Live updates are off for the tenant: nothing arrives until an administrator turns them on,
    /// which the page learns by asking every poll interval (spread a little: every page of the
    /// tenant was closed by the same switch).
    pub(super) fn live_off(&mut self, random: f64) -> Vec<Effect> {
        self.status = ConnectionStatus::LiveOff;
        vec![Effect::CheckModeIn(jittered(self.config.poll_every, random))]
    }

    pub(super) fn on_mode_checked(&mut self, check: ModeCheck, random: f64) -> Vec<Effect> {
        if self.status != ConnectionStatus::LiveOff {
            return vec![]; // a check of a state the page has left (the user pressed Retry)
        }
        match check {
            ModeCheck::Mode(LiveMode::Off) | ModeCheck::Unknown => self.live_off(random),
            ModeCheck::Mode(LiveMode::Polling) if self.dashboard.is_none() && !self.config.report_refusals => {
                self.polling_chosen = true; // a dashboard shown later polls at once (`on_dashboard`)
                self.live_off(random)
            }
            ModeCheck::Mode(mode) => {
                self.polling_chosen = mode == LiveMode::Polling;
                self.failed_attempts = 0;
                if self.polling_chosen { self.poll_by_choice(random) } else { self.begin_attempt() }
            }
            ModeCheck::SignedOut => self.signed_out(),
        }
    }

    pub(super) fn poll_failed(&mut self, failure: PollFailure, random: f64) -> Vec<Effect> {
        match (failure.status, failure.code) {
            (Some(401), _) => self.signed_out(),
            (Some(403), Some(ErrorCode::LiveDashboardsOff)) => self.live_off(random),
            (Some(429), _) if matches!(self.status, ConnectionStatus::Polling { .. }) => {
                let wait = Duration::from_secs(u64::from(failure.retry_after.unwrap_or(1)));
                vec![Effect::PollIn(wait.max(self.poll_interval()))]
            }
            _ => self.attempt_failed(failure.close_code(), random),
        }
    }

    pub(super) fn regular_poll(&mut self) -> Vec<Effect> {
        let Some(dashboard) = self.dashboard else { return vec![] };
        vec![Effect::Poll { dashboard, query: self.poll_query(), purpose: PollPurpose::Regular }]
    }

    pub(super) fn stream_query(&self) -> Vec<(String, String)> {
        match &self.cursor {
            Some(cursor) => vec![("lastEventId".into(), cursor.clone())],
            None => fallback::positions_query(self.tokens()),
        }
    }

    pub(super) fn poll_query(&self) -> Vec<(String, String)> {
        match &self.cursor {
            Some(cursor) => vec![("since".into(), cursor.clone())],
            None => fallback::positions_query(self.tokens()),
        }
    }

    /// Where each widget resumes from; one waiting for a snapshot is left out, so the server
    /// starts it with one.
    pub(super) fn tokens(&self) -> impl Iterator<Item = (&str, &str)> {
        self.subscriptions
            .iter()
            .filter(|(_, sub)| !sub.wants_snapshot())
            .filter_map(|(widget, sub)| sub.position.as_ref().map(|p| (widget.as_str(), p.resume_token.as_str())))
    }

    pub(super) fn poll_interval(&self) -> Duration {
        fallback::poll_interval(self.config.poll_every, self.subscriptions.values().filter_map(|s| s.interval_secs))
    }

    pub(super) fn schedule_probe(&mut self) -> Vec<Effect> {
        if self.probe_scheduled || self.polling_chosen {
            return vec![];
        }
        self.probe_scheduled = true;
        vec![Effect::ProbeIn(self.config.probe_backoff.delay(self.failed_probes + 1, 0.5))]
    }

    pub(super) fn probe_failed(&mut self, random: f64) -> Vec<Effect> {
        self.probing = None;
        self.failed_probes += 1;
        if self.probe_scheduled || !self.on_fallback() || self.polling_chosen {
            return vec![];
        }
        self.probe_scheduled = true;
        vec![Effect::ProbeIn(self.config.probe_backoff.delay(self.failed_probes + 1, random))]
    }

    pub(super) fn on_dashboard(&mut self, dashboard: Option<i64>, random: f64) -> Vec<Effect> {
        if dashboard == self.dashboard || dashboard.is_none() {
            self.dashboard = self.dashboard.or(dashboard);
            return vec![];
        }
        self.dashboard = dashboard;
        self.cursor = None;
        if self.status == ConnectionStatus::LiveOff && self.polling_chosen {
            // A page that could not poll (it had no dashboard) now can.
            return self.poll_by_choice(random);
        }
        let connecting = self.status == ConnectionStatus::Connecting;
        match (self.status, self.transport) {
            // A stream of the old dashboard, open or still opening, must not serve the new one.
            (ConnectionStatus::LiveSse, _) | (ConnectionStatus::Connecting, Transport::Sse) => {
                let mut effects = vec![Effect::CloseStream];
                effects.extend(self.try_stream());
                effects
            }
            // The old dashboard's poll in flight is ignored when it answers (`Input::Polled`).
            (ConnectionStatus::Polling { .. }, _) => self.regular_poll(),
            (_, Transport::Polling) if connecting => self.regular_poll(),
            _ => vec![],
        }
    }

    /// The transport that said so has closed already; only a probe may still be open.
    pub(super) fn signed_out(&mut self) -> Vec<Effect> {
        let mut effects = match self.probing.take() {
            Some(Transport::WebSocket) => vec![Effect::Close],
            Some(Transport::Sse) => vec![Effect::CloseStream],
            _ => vec![],
        };
        self.status = ConnectionStatus::SignedOut;
        effects.push(Effect::SignIn);
        effects
    }

    pub(super) fn going_away(&mut self, random: f64) -> Vec<Effect> {
        // Prompt, but spread: thousands of clients must not return in the same millisecond.
        let delay = self.config.going_away_spread.mul_f64(random.clamp(0.0, 1.0));
        self.retry(1, delay, GOING_AWAY)
    }

    /// Every transport of the attempt failed, the last with close code `cause`: wait out the
    /// backoff (or give up).
    pub(super) fn attempt_failed(&mut self, cause: u16, random: f64) -> Vec<Effect> {
        self.failed_attempts += 1;
        if self.failed_attempts > self.config.max_attempts {
            self.status = ConnectionStatus::Offline;
            return vec![];
        }
        let delay = self.config.backoff.delay(self.failed_attempts, random);
        self.retry(self.failed_attempts, delay, cause)
    }

    pub(super) fn retry(&mut self, attempt: u32, delay: Duration, cause: u16) -> Vec<Effect> {
        let retry_in_secs = delay.as_secs_f64().ceil() as u32;
        self.status = ConnectionStatus::Reconnecting { attempt, retry_in_secs, cause };
        vec![Effect::RetryIn(delay)]
    }
}

/// `every`, spread by ±10 % with `random` (uniform in `[0, 1)`; 0.5 gives `every` itself).
fn jittered(every: Duration, random: f64) -> Duration {
    every.mul_f64(0.9 + 0.2 * random.clamp(0.0, 1.0))
}
