//! Connection resume tokens: everything needed to restore a connection's subscriptions, signed, so
//! that any node (sharing the session secret) can honour one without shared state.
//!
//! A token lists each subscription's widget, topic and the position last delivered on it. The
//! server hands out a fresh one in `welcome` and in every `pong`, so a client holds one at most a
//! heartbeat old; whatever it replays from an older position the client drops by offset. It is a JWT
//! with its own audience, so it can never pass for a session token, nor a session token for it.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const AUDIENCE: &str = "livedash-resume";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumedSubscription {
    #[serde(rename = "w")]
    pub widget: String,
    #[serde(rename = "t")]
    pub topic: String,
    /// The subscription's resume token (`epoch.offset`), if anything was delivered yet.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    aud: String,
    /// The user the connection belonged to.
    sub: String,
    exp: i64,
    subs: Vec<ResumedSubscription>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the resume token is not valid (forged, expired, or another user's)")]
pub struct InvalidResumeToken;

pub struct ResumeKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl ResumeKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    pub fn issue(&self, user_id: i64, expires_at: i64, subs: Vec<ResumedSubscription>) -> String {
        let claims = Claims { aud: AUDIENCE.into(), sub: user_id.to_string(), exp: expires_at, subs };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    /// The subscriptions in `token`, if it is genuine, unexpired and `user_id`'s.
    pub fn verify(&self, token: &str, user_id: i64) -> Result<Vec<ResumedSubscription>, InvalidResumeToken> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| InvalidResumeToken)?
            .claims;
        if claims.sub != user_id.to_string() {
            return Err(InvalidResumeToken);
        }
        Ok(claims.subs)
    }
}

impl std::fmt::Debug for ResumeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeKeys { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::{Claims as SessionClaims, TokenKeys};

    fn later() -> i64 {
        crate::clock::now_secs() + 600
    }

    fn subs() -> Vec<ResumedSubscription> {
        vec![
            ResumedSubscription {
                widget: "orders".into(),
                topic: "sales/orders".into(),
                position: Some("ab.7".into()),
            },
            ResumedSubscription { widget: "kpis".into(), topic: "kpi/overview".into(), position: None },
        ]
    }

    #[test]
    fn round_trips_for_the_same_user() {
        let keys = ResumeKeys::new(b"secret");
        assert_eq!(keys.verify(&keys.issue(7, later(), subs()), 7), Ok(subs()));
    }

    #[test]
    fn refuses_other_users_forgeries_expiry_and_session_tokens() {
        let keys = ResumeKeys::new(b"secret");
        assert_eq!(keys.verify(&keys.issue(7, later(), subs()), 8), Err(InvalidResumeToken), "another user's");
        assert_eq!(keys.verify(&ResumeKeys::new(b"other").issue(7, later(), subs()), 7), Err(InvalidResumeToken));
        assert_eq!(keys.verify(&keys.issue(7, 1, subs()), 7), Err(InvalidResumeToken), "expired");
        let session =
            TokenKeys::new(b"secret").issue(&SessionClaims { sub: "7".into(), sid: "s".into(), iat: 0, exp: later() });
        assert_eq!(keys.verify(&session, 7), Err(InvalidResumeToken), "a session token is no resume token");
        let resume = keys.issue(7, later(), subs());
        assert!(TokenKeys::new(b"secret").verify(&resume).is_err(), "nor the other way round");
    }
}
