//! What every live transport checks before it serves anyone, in one place so that none forgets a
//! check: the Origin, the address's connection rate, the session, the tenant's live mode (see
//! [`live_mode_gate`]) and the per-user connection limit. A refusal is audited and counted the same way whichever transport
//! refused it; the WebSocket tells it as a close code, the HTTP transports as a status.

use crate::connections::live_mode_gate::{self, Carrier};
use crate::connections::registry::Registration;
use crate::outbox::Outbox;
use crate::{
    AppState,
    auth::{AuthError, Session, origin},
    http_error::ApiError,
    roster::Seat,
    store::audit::{AuditEntry, Outcome},
    telemetry,
};
use axum::http::{
    HeaderMap, StatusCode,
    header::{HOST, ORIGIN},
};
use protocol::close::{Disconnect, LIMIT, LIVE_OFF, POLLING_ONLY, SERVER_ERROR, SESSION_ENDED, TRY_AGAIN};
use protocol::{ErrorCode, LiveMode};
use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

/// When a client refused with [`TRY_AGAIN`] over HTTP is told to come back.
const RETRY_SECS: u64 = 2;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// A new id for a live connection, unique in this process whatever its transport.
pub fn next_connection_id() -> u64 {
    NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed)
}

/// A refused connection: its close code, the reason the client is told, the label of the denial
/// metric, and for a limit its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
    pub metric: &'static str,
    pub max: Option<u64>,
}

impl Refusal {
    pub fn new(code: u16, reason: impl Into<String>, metric: &'static str) -> Self {
        Self { code, reason: reason.into(), metric, max: None }
    }

    /// `failed` when the server could not serve (its store or roster did not answer), `refused`
    /// when a rule said no: what the connection success rate counts against the server.
    pub fn outcome(&self) -> &'static str {
        match self.code {
            SERVER_ERROR | TRY_AGAIN => "failed",
            _ => "refused",
        }
    }

    /// The refusal as a WebSocket closes with it.
    pub fn disconnect(self) -> Disconnect {
        Disconnect::new(self.code, self.reason)
    }

    /// The refusal as an HTTP answer, for the transports that can show one.
    pub fn to_api_error(&self) -> ApiError {
        match self.code {
            SESSION_ENDED => ApiError::unauthorized(&self.reason),
            LIVE_OFF => ApiError::new(StatusCode::FORBIDDEN, ErrorCode::LiveDashboardsOff, &self.reason),
            POLLING_ONLY => ApiError::new(StatusCode::FORBIDDEN, ErrorCode::PollingOnly, &self.reason),
            LIMIT => ApiError::limit(self.metric, self.max.unwrap_or_default(), &self.reason),
            403 => ApiError::forbidden(&self.reason),
            TRY_AGAIN => ApiError {
                retry_after: Some(RETRY_SECS),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, &self.reason)
            },
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, &self.reason),
        }
    }
}

/// Which Origin rule a transport follows (see `auth::origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginRule {
    /// An allowed `Origin` is required (WebSocket upgrades always carry one).
    Required,
    /// An `Origin`, when sent, must be allowed; a cross-site request is refused.
    IfPresent,
}

/// Refuses requests from pages that may not use this user's session.
pub fn check_origin(state: &AppState, headers: &HeaderMap, rule: OriginRule) -> Result<(), Refusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let origin = header(ORIGIN.as_str());
    let allowed = &state.config.allowed_origins;
    let ok = match rule {
        OriginRule::Required => origin::allowed(origin, header(HOST.as_str()), allowed),
        OriginRule::IfPresent => origin::http_allowed(origin, header("sec-fetch-site"), header(HOST.as_str()), allowed),
    };
    if ok { Ok(()) } else { Err(Refusal::new(403, format!("origin {origin:?} not allowed"), "origin")) }
}

/// Counts a connection attempt of `peer` against its per-minute limit.
pub fn check_connect_rate(state: &AppState, peer: IpAddr) -> Result<(), Refusal> {
    let source = crate::client_addr::Source::of(peer);
    if state.limiters.connects_by_source.check(&source, std::time::Instant::now()).is_ok() {
        return Ok(());
    }
    let max = state.config.connect_attempts_per_min;
    let refusal = Refusal::new(LIMIT, format!("more than {max} connection attempts a minute"), "connect_rate");
    Err(Refusal { max: Some(max as u64), ..refusal })
}

/// The signed-in user of `headers`, and their tenant's live mode, if it lets `carrier` in.
pub async fn check_session(
    state: &AppState,
    headers: &HeaderMap,
    carrier: Carrier,
) -> Result<(Session, LiveMode), Refusal> {
    let server_error = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "could not check a live connection");
        Refusal::new(SERVER_ERROR, "server error", "server_error")
    };
    let session = match state.auth.session_of(headers).await {
        Ok(session) => session,
        Err(AuthError::Store(e)) => return Err(server_error(&e)),
        Err(e) => return Err(Refusal::new(SESSION_ENDED, e.to_string(), "session")),
    };
    let mode = match state.auth.live_mode(&session.user.tenant).await {
        Ok(mode) => mode,
        Err(e) => return Err(server_error(&e)),
    };
    match live_mode_gate::shut_out(mode, carrier) {
        None => Ok((session, mode)),
        Some(out) => Err(Refusal::new(out.code, out.reason, out.metric)),
    }
}

/// Seats a connection in the per-user limit, which WebSocket and SSE connections on every node
/// share, registers it so that a logout or a change of live mode can close it, checks the session
/// again (a logout or a change of live mode between the first check and the registration would
/// otherwise miss this connection, so it is refused now instead with the same 4401/4403/4405), and
/// audits it as connected: on every transport, only once it holds its seat. `detail` says what
/// connected (`websocket from …`, `sse for dashboard 3 from …`).
pub async fn seat(
    state: &AppState,
    id: u64,
    session: &Session,
    outbox: &Arc<Outbox>,
    headers: &HeaderMap,
    detail: String,
) -> Result<Registration, Refusal> {
    let limit = state.config.max_connections_per_user;
    let seat = Seat::take(state.roster.clone(), &session.user, limit)
        .await
        .map_err(|unavailable| Refusal::new(TRY_AGAIN, unavailable.to_string(), "roster_unavailable"))?
        .ok_or_else(|| Refusal {
            max: Some(limit as u64),
            ..Refusal::new(LIMIT, format!("at most {limit} live connections per user"), "connections_per_user")
        })?;
    let user = &session.user;
    let registration = state.sockets.register(id, user.id, &session.id, &user.tenant, outbox.clone(), seat);
    check_session(state, headers, Carrier::Push).await?;
    accepted(state, session, detail);
    Ok(registration)
}

fn accepted(state: &AppState, session: &Session, detail: String) {
    metrics::counter!(telemetry::CONNECT_ATTEMPTS, "outcome" => "ok").increment(1);
    state.auditor.record(AuditEntry {
        tenant: Some(session.user.tenant.to_string()),
        actor: Some(session.user.email.clone()),
        action: "connect",
        outcome: Outcome::Ok,
        detail: Some(detail),
    });
}

/// Logs, counts and audits a refusal.
pub fn deny(state: &AppState, session: Option<&Session>, peer: IpAddr, refusal: &Refusal) {
    tracing::info!(%peer, code = refusal.code, reason = %refusal.reason, "live connection refused");
    telemetry::denied(refusal.metric);
    metrics::counter!(telemetry::CONNECT_ATTEMPTS, "outcome" => refusal.outcome()).increment(1);
    state.auditor.record(AuditEntry {
        tenant: session.map(|s| s.user.tenant.to_string()),
        actor: Some(session.map_or_else(|| peer.to_string(), |s| s.user.email.clone())),
        action: "connect",
        outcome: Outcome::Denied,
        detail: Some(format!("{}: {}", refusal.code, refusal.reason)),
    });
}

/// What an SSE stream checks before it opens: the Origin (when sent), the address's connection
/// rate, the session and the live mode. A refusal is logged, audited and counted (also as an SSE
/// error) and comes back as the HTTP answer to give.
pub async fn admit_stream(state: &AppState, peer: IpAddr, headers: &HeaderMap) -> Result<Session, ApiError> {
    let checked = match check_origin(state, headers, OriginRule::IfPresent).and(check_connect_rate(state, peer)) {
        Ok(()) => check_session(state, headers, Carrier::Push).await,
        Err(refusal) => Err(refusal),
    };
    checked.map(|(session, _)| session).map_err(|refusal| refuse_stream(state, None, peer, &refusal))
}

/// Denies a stream (see [`admit_stream`]) and gives the HTTP answer.
pub fn refuse_stream(state: &AppState, session: Option<&Session>, peer: IpAddr, refusal: &Refusal) -> ApiError {
    deny(state, session, peer, refusal);
    metrics::counter!(telemetry::SSE_ERRORS, "reason" => refusal.metric).increment(1);
    refusal.to_api_error()
}
