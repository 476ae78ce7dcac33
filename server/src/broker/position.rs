//! Resume tokens: where a subscriber stands in a topic's log, as an opaque string.
//!
//! The token is `epoch.offset`. Clients must treat it as opaque, which leaves room to sign it or
//! add fields later without changing the protocol.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
}

impl Position {
    pub fn token(&self) -> String {
        format!("{}.{}", self.epoch, self.offset)
    }

    /// `None` for anything that is not a token this server issued.
    pub fn parse(token: &str) -> Option<Self> {
        let (epoch, offset) = token.split_once('.')?;
        if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self { epoch: epoch.to_owned(), offset: offset.parse().ok()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let p = Position { epoch: "00ff".into(), offset: 42 };
        assert_eq!(Position::parse(&p.token()), Some(p));
    }

    #[test]
    fn rejects_what_it_did_not_issue() {
        for bad in ["", ".", "abc", "zz.1", ".5", "ab.", "ab.-1", "ab.1.2", "ab.99999999999999999999"] {
            assert_eq!(Position::parse(bad), None, "{bad:?}");
        }
    }
}
