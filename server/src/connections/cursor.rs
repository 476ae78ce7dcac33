//! Stream cursors: where a reader of a whole dashboard stands in every topic it follows, as one
//! compact, signed string. It is the SSE `id:` of every data event (so `Last-Event-ID` resumes a
//! stream) and the `cursor` of a polling answer (so `since=` continues from it).
//!
//! A dashboard streams a dozen feeds or more and the id rides on every event, so the cursor is
//! binary, then base64url: a version byte, the dashboard id, and per feed 4 bytes of the SHA-256 of
//! its widget id, 4 bytes of the SHA-256 of its topic's epoch and the offset; then 12 bytes of
//! HMAC-SHA256 over it all. About 15 characters a feed, where names and epochs in the clear would
//! take 40. The signature means a client can hand back only positions this server gave it. A hash
//! that matches by accident (one in four billion) can only make a widget resume from a position of
//! the same dashboard; a changed epoch is caught by its hash and answered with `gap` and a snapshot.

use crate::broker::position::Position;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const VERSION: u8 = 1;
const MAC_LEN: usize = 12;
/// Longest cursor accepted: far more feeds than a dashboard may have.
const MAX_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stream position is not valid (forged, damaged, or of another dashboard)")]
pub struct BadCursor;

pub struct CursorKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for CursorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKeys(..)")
    }
}

/// Where a cursor says one widget stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// In the topic's current epoch: continue after this resume token.
    At(String),
    /// In an epoch the topic no longer has: the widget lost updates and needs a fresh snapshot.
    Lost,
}

/// The positions a cursor holds, looked up by widget.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Positions {
    by_widget: HashMap<u32, (u32, u64)>,
}

impl CursorKeys {
    /// Keys derived from the session secret, with their own label, so no other signature made
    /// with that secret can pass for a cursor.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"livedash stream cursor v1");
        Self { key: mac.finalize().into_bytes().into() }
    }

    /// The cursor of `dashboard` with these widgets at these positions.
    pub fn encode<'a>(&self, dashboard: i64, positions: impl IntoIterator<Item = (&'a str, &'a Position)>) -> String {
        let mut bytes = vec![VERSION];
        put_varint(&mut bytes, dashboard as u64);
        for (widget, position) in positions {
            bytes.extend_from_slice(&hash32(widget.as_bytes()).to_be_bytes());
            bytes.extend_from_slice(&hash32(position.epoch.as_bytes()).to_be_bytes());
            put_varint(&mut bytes, position.offset);
        }
        let tag = self.mac(&bytes);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The positions in `cursor`, if this server signed it for `dashboard`.
    pub fn decode(&self, dashboard: i64, cursor: &str) -> Result<Positions, BadCursor> {
        if cursor.len() > MAX_LEN {
            return Err(BadCursor);
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| BadCursor)?;
        let body_len = bytes.len().checked_sub(MAC_LEN).ok_or(BadCursor)?;
        let (body, tag) = bytes.split_at(body_len);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(body);
        mac.verify_truncated_left(tag).map_err(|_| BadCursor)?;
        let mut reader = Reader(body);
        if reader.byte()? != VERSION || reader.varint()? != dashboard as u64 {
            return Err(BadCursor);
        }
        let mut positions = Positions::default();
        while !reader.0.is_empty() {
            let widget = reader.u32()?;
            let epoch = reader.u32()?;
            positions.by_widget.insert(widget, (epoch, reader.varint()?));
        }
        Ok(positions)
    }

    fn mac(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(body);
        let full = mac.finalize().into_bytes();
        full[..MAC_LEN].try_into().expect("SHA-256 is longer than the tag")
    }
}

impl Positions {
    /// Where `widget` stands, given its topic's epoch now (`None`: the topic does not exist yet);
    /// `None` when the cursor does not know the widget.
    pub fn resume(&self, widget: &str, current_epoch: Option<&str>) -> Option<Resume> {
        let &(epoch, offset) = self.by_widget.get(&hash32(widget.as_bytes()))?;
        Some(match current_epoch {
            Some(current) if hash32(current.as_bytes()) == epoch => {
                Resume::At(Position { epoch: current.to_owned(), offset }.token())
            }
            _ => Resume::Lost,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.by_widget.is_empty()
    }
}

fn hash32(bytes: &[u8]) -> u32 {
    let digest = Sha256::digest(bytes);
    u32::from_be_bytes(digest[..4].try_into().expect("SHA-256 has 32 bytes"))
}

/// LEB128: offsets are small most of the time, and an id rides on every event.
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, BadCursor> {
        let (&first, rest) = self.0.split_first().ok_or(BadCursor)?;
        self.0 = rest;
        Ok(first)
    }

    fn u32(&mut self) -> Result<u32, BadCursor> {
        let (head, rest) = self.0.split_at_checked(4).ok_or(BadCursor)?;
        self.0 = rest;
        Ok(u32::from_be_bytes(head.try_into().expect("four bytes")))
    }

    fn varint(&mut self) -> Result<u64, BadCursor> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(BadCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: &str, offset: u64) -> Position {
        Position { epoch: epoch.into(), offset }
    }

    #[test]
    fn round_trips_each_widgets_position() {
        let keys = CursorKeys::new(b"secret");
        let (a, b) = (at("00000000000000aa", 7), at("00000000000000bb", 300_000));
        let cursor = keys.encode(42, [("w1", &a), ("notification-center", &b)]);
        let positions = keys.decode(42, &cursor).unwrap();
        assert_eq!(positions.resume("w1", Some("00000000000000aa")), Some(Resume::At("00000000000000aa.7".into())));
        assert_eq!(
            positions.resume("notification-center", Some("00000000000000bb")),
            Some(Resume::At("00000000000000bb.300000".into()))
        );
        assert_eq!(positions.resume("w1", Some("00000000000000cc")), Some(Resume::Lost), "the epoch changed");
        assert_eq!(positions.resume("w1", None), Some(Resume::Lost), "the topic is gone");
        assert_eq!(positions.resume("w9", Some("00000000000000aa")), None, "not in the cursor");
    }

    #[test]
    fn is_compact() {
        let keys = CursorKeys::new(b"secret");
        let positions: Vec<(String, Position)> =
            (0..12).map(|i| (format!("w{i}"), at(&format!("{i:016x}"), 100_000 + i))).collect();
        let cursor = keys.encode(3, positions.iter().map(|(w, p)| (w.as_str(), p)));
        assert!(cursor.len() <= 200, "{} characters for 12 feeds", cursor.len());
    }

    #[test]
    fn forged_damaged_foreign_or_other_dashboards_cursors_are_refused() {
        let keys = CursorKeys::new(b"secret");
        let p = at("00000000000000aa", 7);
        let cursor = keys.encode(42, [("w1", &p)]);
        assert_eq!(keys.decode(43, &cursor), Err(BadCursor), "another dashboard");
        assert_eq!(CursorKeys::new(b"other").decode(42, &cursor), Err(BadCursor), "another server's secret");
        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        bytes[6] ^= 1;
        assert_eq!(keys.decode(42, &URL_SAFE_NO_PAD.encode(&bytes)), Err(BadCursor), "a changed offset");
        for junk in ["", "!!!", "AAAA", &"A".repeat(5000)] {
            assert_eq!(keys.decode(42, junk), Err(BadCursor), "{junk:?}");
        }
        assert!(keys.decode(42, &keys.encode(42, [])).unwrap().is_empty());
    }
}
