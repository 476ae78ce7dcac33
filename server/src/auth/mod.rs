//! Who is asking: user sessions (a JWT in an httpOnly cookie, backed by a sessions row), display
//! sessions (the same cookie, backed by the display's row: see [`Auth::display_session`]), the
//! Origin rule, the sign-in throttle and connection resume tokens. The secrets themselves (password hashes,
//! API keys) are `credentials`'.

pub mod lookup_cache;
pub mod origin;
pub mod resume_token;
pub mod session_cookie;
pub mod sign_in_throttle;
pub mod token;

use crate::broker::cluster::Notice;
use crate::clock::now_secs;
use crate::{
    store::{
        Store, StoreError,
        accounts::{EmailKey, Role, User},
        displays::DisplayScope,
    },
    topic_name::TenantId,
};
use axum_extra::extract::cookie::Cookie;
use lookup_cache::LookupCache;
use protocol::LiveMode;
use resume_token::ResumeKeys;
use session_cookie::CookiePolicy;
use std::sync::Arc;
use std::time::{Duration, Instant};
use token::{Claims, TokenError, TokenKeys};

/// A signed-in user and the session they are signed in with; or a wall display, whose `user` is
/// the display as the rest of the server sees a principal (role [`Role::Display`], a negative id
/// that no user has, `display <name>` for logs) and whose `display` says what it may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: User,
    pub id: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Set for a display session: its dashboards and topics.
    pub display: Option<Arc<DisplayScope>>,
}

impl Session {
    /// Whether this session may change anything (a display session may not). The one rule every
    /// write path asks: the `Session` extractor for every API call that is not a read, and the live
    /// connections for what a page reports over them.
    pub fn may_write(&self) -> Result<(), ReadOnly> {
        if self.display.is_some() { Err(ReadOnly) } else { Ok(()) }
    }

    /// Whether this session may see dashboard `id` at all (a display sees only its own). The
    /// tenant is the store's to check.
    pub fn may_see_dashboard(&self, id: i64) -> bool {
        self.display.as_ref().is_none_or(|display| display.dashboards.contains(&id))
    }
}

/// What a display session is refused when it tries to change something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a display can only read")]
pub struct ReadOnly;

/// A display's session id: what its token names, what revoking it ends.
pub fn display_session_id(display: i64) -> String {
    format!("{DISPLAY_SESSION}{display}")
}

/// The display whose session id `session_id` is ([`display_session_id`]); `None` for a person's.
pub fn display_of_session(session_id: &str) -> Option<i64> {
    session_id.strip_prefix(DISPLAY_SESSION)?.parse().ok()
}

const DISPLAY_SESSION: &str = "display:";

/// A display session has no expiry of its own (revocation ends it): its token says a hundred years.
const DISPLAY_TOKEN_SECS: i64 = 100 * 365 * 24 * 3600;
/// The longest a browser keeps a cookie (Chromium caps `Max-Age` there).
const DISPLAY_COOKIE: Duration = Duration::from_secs(400 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("not signed in")]
    Missing,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the session has ended")]
    Ended,
    #[error("too many sign-ins are being checked at once; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long a sign-in waits for a password check to be free before it is told to come back.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_millis(750);

#[derive(Debug)]
pub struct Auth {
    store: Store,
    keys: TokenKeys,
    pub resume: ResumeKeys,
    ttl: Duration,
    cookies: CookiePolicy,
    /// Password hashing is slow and takes memory by design (Argon2id): a login flood must queue
    /// here, not fill the blocking pool.
    password_checks: tokio::sync::Semaphore,
    /// session id → its user; display session id → what it may read; tenant → its live mode.
    sessions: LookupCache<String, User>,
    displays: LookupCache<String, Arc<DisplayScope>>,
    live_modes: LookupCache<TenantId, LiveMode>,
}

/// How long a session's or a tenant's state read from the store is trusted (see [`lookup_cache`]).
const LOOKUP_TTL: Duration = Duration::from_secs(1);

impl Auth {
    pub fn new(store: Store, secret: &[u8], ttl: Duration, cookies: CookiePolicy, max_password_checks: usize) -> Self {
        Self {
            store,
            keys: TokenKeys::new(secret),
            resume: ResumeKeys::new(secret),
            ttl,
            cookies,
            password_checks: tokio::sync::Semaphore::new(max_password_checks),
            sessions: LookupCache::new(LOOKUP_TTL),
            displays: LookupCache::new(LOOKUP_TTL),
            live_modes: LookupCache::new(LOOKUP_TTL),
        }
    }

    /// Checks the password and opens a session; returns it with its token. [`AuthError::Busy`] when
    /// no password check is free soon enough.
    pub async fn login(&self, email: &EmailKey, password: &str) -> Result<Option<(Session, String)>, AuthError> {
        let permit = tokio::time::timeout(PASSWORD_CHECK_WAIT, self.password_checks.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            return Err(AuthError::Busy);
        };
        let Some(user) = self.store.check_login(email, password).await? else {
            return Ok(None);
        };
        let now = now_secs();
        let expires_at = now + self.ttl.as_secs() as i64;
        let id = self.store.create_session(user.id, expires_at).await?;
        let token = self.keys.issue(&Claims { sub: user.id.to_string(), sid: id.clone(), iat: now, exp: expires_at });
        Ok(Some((Session { user, id, expires_at, display: None }, token)))
    }

    /// Trades a display link's secret for a display session and its token; `None` when the
    /// display does not exist, is revoked, or the secret is not its own.
    pub async fn display_session(&self, display: i64, secret: &str) -> Result<Option<(Session, String)>, AuthError> {
        let Some((_, stored)) = self.store.display_secret(display).await? else { return Ok(None) };
        if !crate::credentials::display_secret::matches(secret, &stored) {
            return Ok(None);
        }
        let sid = display_session_id(display);
        let now = now_secs();
        let claims = Claims { sub: sid.clone(), sid, iat: now, exp: now + DISPLAY_TOKEN_SECS };
        let token = self.keys.issue(&claims);
        Ok(Some((self.display_of(display, claims).await?, token)))
    }

    /// The session of `display` that `claims` name, if its display still stands.
    async fn display_of(&self, display: i64, claims: Claims) -> Result<Session, AuthError> {
        if claims.sub != claims.sid {
            return Err(TokenError::Invalid.into());
        }
        let scope = match self.displays.get(&claims.sid, Instant::now()) {
            Ok(scope) => scope,
            Err(began) => {
                let scope = Arc::new(self.store.display_scope(display).await?.ok_or(AuthError::Ended)?);
                self.displays.put(claims.sid.clone(), scope.clone(), began, Instant::now());
                scope
            }
        };
        let user = User {
            id: -display,
            email: format!("display {}", scope.name),
            tenant: scope.tenant.clone(),
            role: Role::Display,
        };
        Ok(Session { user, id: claims.sid, expires_at: claims.exp, display: Some(scope) })
    }

    /// The session a cookie value proves: a valid signature, not expired, not logged out.
    pub async fn session(&self, token: Option<&str>) -> Result<Session, AuthError> {
        let claims = self.keys.verify(token.ok_or(AuthError::Missing)?)?;
        if let Some(display) = display_of_session(&claims.sid) {
            return self.display_of(display, claims).await;
        }
        let user = match self.sessions.get(&claims.sid, Instant::now()) {
            Ok(user) => user,
            Err(began) => {
                let user = self.store.session_user(&claims.sid).await?.ok_or(AuthError::Ended)?;
                self.sessions.put(claims.sid.clone(), user.clone(), began, Instant::now());
                user
            }
        };
        if user.id.to_string() != claims.sub {
            return Err(TokenError::Invalid.into());
        }
        Ok(Session { user, id: claims.sid, expires_at: claims.exp, display: None })
    }

    /// The session the request's cookie proves (what every signed-in page and API call asks).
    pub async fn session_of(&self, headers: &axum::http::HeaderMap) -> Result<Session, AuthError> {
        self.session(self.cookies.read(headers).as_deref()).await
    }

    pub async fn logout(&self, session: &Session) -> Result<(), StoreError> {
        self.store.revoke_session(&session.id).await?;
        self.sessions.changed(&session.id);
        Ok(())
    }

    /// How `tenant`'s dashboards get their updates. An unknown tenant (removed from the store) is
    /// `off`: nothing of it is served live.
    pub async fn live_mode(&self, tenant: &TenantId) -> Result<LiveMode, StoreError> {
        let began = match self.live_modes.get(tenant, Instant::now()) {
            Ok(mode) => return Ok(mode),
            Err(began) => began,
        };
        let Some(found) = self.store.tenant(tenant).await? else { return Ok(LiveMode::Off) };
        self.live_modes.put(tenant.clone(), found.live_mode, began, Instant::now());
        Ok(found.live_mode)
    }

    /// Sets `tenant`'s live mode (the caller closes the connections it no longer lets in).
    pub async fn set_live_mode(&self, tenant: &TenantId, mode: LiveMode) -> Result<(), StoreError> {
        self.store.set_live_mode(tenant, mode).await?;
        self.live_modes.changed(tenant);
        Ok(())
    }

    /// Another node changed what `notice` names: what this node remembers of it is stale.
    pub fn forget(&self, notice: &Notice) {
        match notice {
            Notice::SessionEnded(session) => {
                self.sessions.changed(session);
                self.displays.changed(session);
            }
            Notice::LiveMode(tenant, _) => self.live_modes.changed(tenant),
            Notice::TopicRules(_) | Notice::Notifiers(_) => {} // see `Permissions`, `Notifiers`
            Notice::Missed => {
                self.sessions.clear();
                self.displays.clear();
                self.live_modes.clear();
            }
        }
    }

    /// Whether the session still stands in the store (not logged out, not expired), asked afresh.
    pub async fn session_stands(&self, session_id: &str) -> Result<bool, StoreError> {
        match display_of_session(session_id) {
            Some(display) => Ok(self.store.display_scope(display).await?.is_some()),
            None => Ok(self.store.session_user(session_id).await?.is_some()),
        }
    }

    /// The session token a request's cookie carries, if any.
    pub fn token_of(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        self.cookies.read(headers)
    }

    /// The cookie that carries a session token, for a request with these headers.
    pub fn cookie(&self, token: String, headers: &axum::http::HeaderMap) -> Cookie<'static> {
        self.cookies.issue(token, self.ttl, headers)
    }

    /// The cookie of a display session: kept as long as browsers keep any (400 days), and issued
    /// again each time the screen asks what it shows, so a screen that runs for years keeps it.
    pub fn display_cookie(&self, token: String, headers: &axum::http::HeaderMap) -> Cookie<'static> {
        self.cookies.issue(token, DISPLAY_COOKIE, headers)
    }

    /// A cookie that makes the browser forget the session.
    pub fn removal_cookie(&self, headers: &axum::http::HeaderMap) -> Cookie<'static> {
        self.cookies.removal(headers)
    }
}
