//! Session tokens: HS256-signed JWTs naming a user and a session.
//!
//! Only HS256 is accepted: a token that claims `none`, or any other algorithm, fails verification,
//! as does one with a bad signature or past its `exp` (no leeway).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The session's id (see `store::sessions`).
    pub sid: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the session has expired")]
    Expired,
    #[error("the session token is not valid")]
    Invalid,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    pub fn issue(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            }
        })
    }
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys { .. }")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

    fn claims(exp: i64) -> Claims {
        Claims { sub: "7".into(), sid: "s1".into(), iat: 0, exp }
    }

    /// A token with any header, unsigned: what an attacker can make without the secret.
    pub fn unsigned(header: &str, claims: &Claims) -> String {
        let payload = serde_json::to_string(claims).unwrap();
        format!("{}.{}.", B64.encode(header), B64.encode(payload))
    }

    fn future() -> i64 {
        crate::clock::now_secs() + 3600
    }

    #[test]
    fn a_token_it_issued_verifies() {
        let keys = TokenKeys::new(b"secret");
        let c = claims(future());
        assert_eq!(keys.verify(&keys.issue(&c)), Ok(c));
    }

    #[test]
    fn forged_expired_and_unsigned_tokens_are_refused() {
        let keys = TokenKeys::new(b"secret");
        let other = TokenKeys::new(b"other secret");
        assert_eq!(keys.verify(&other.issue(&claims(future()))), Err(TokenError::Invalid), "wrong key");
        assert_eq!(keys.verify(&keys.issue(&claims(1))), Err(TokenError::Expired));
        let none = unsigned(r#"{"alg":"none","typ":"JWT"}"#, &claims(future()));
        assert_eq!(keys.verify(&none), Err(TokenError::Invalid), "alg none");
        let hs512 = TokenKeys::new(b"secret");
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims(future()), &hs512.encoding).unwrap();
        assert_eq!(keys.verify(&token), Err(TokenError::Invalid), "only HS256");
        assert_eq!(keys.verify("garbage"), Err(TokenError::Invalid));
        let valid = keys.issue(&claims(future()));
        let tampered = valid.replacen('.', ".e", 1);
        assert_eq!(keys.verify(&tampered), Err(TokenError::Invalid));
    }
}
