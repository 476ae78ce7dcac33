//! What the benchmark reads out of a message, without parsing it: its type, topic, offset and the
//! first point's value (the send time). A few substring searches over the bytes, no allocation:
//! the generator must stay cheaper than the server it measures. Pure, so the host tests check it
//! against the messages livedash and the baselines really send.

use memchr::memmem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A live message: livedash's update (`{"widgetId":…`), or a baseline's broadcast.
    Update,
    /// livedash's snapshot, or a baseline's `subscribed` answer: where a subscription starts.
    Start,
    /// livedash's `gap`: the subscription lost messages; a snapshot follows.
    Gap,
    /// Anything else (welcome, pong, error).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen<'a> {
    pub kind: Kind,
    pub topic: Option<&'a [u8]>,
    pub offset: Option<u64>,
    /// The first point's value: the publisher's send time, in µs since the run's epoch.
    pub value: Option<u64>,
}

pub fn scan(message: &[u8]) -> Seen<'_> {
    let kind = match string_after(message, b"{\"type\":\"") {
        None => Kind::Update,
        Some(b"snapshot" | b"subscribed") => Kind::Start,
        Some(b"gap") => Kind::Gap,
        Some(_) => Kind::Other,
    };
    Seen {
        kind,
        topic: after(message, b"\"topic\":\"").and_then(|rest| rest.split(|b| *b == b'"').next()),
        offset: after(message, b"\"offset\":").and_then(leading_integer),
        value: after(message, b"\"value\":").and_then(leading_integer),
    }
}

/// The offset in a publish API answer (`{…,"offset":12}`).
pub fn published_offset(answer: &[u8]) -> Option<u64> {
    after(answer, b"\"offset\":").and_then(leading_integer)
}

/// The bytes after the first `needle`.
fn after<'a>(haystack: &'a [u8], needle: &[u8]) -> Option<&'a [u8]> {
    memmem::find(haystack, needle).map(|at| &haystack[at + needle.len()..])
}

/// The string that starts right after `prefix` when the message starts with it.
fn string_after<'a>(message: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    message.strip_prefix(prefix).and_then(|rest| rest.split(|b| *b == b'"').next())
}

/// The integer part of the number `bytes` start with (`12.0` is 12).
fn leading_integer(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_livedash_update_yields_topic_offset_and_send_time() {
        let update = br#"{"widgetId":"w0","ts":1,"series":[{"ts":1,"value":123456.0}],"meta":{"topic":"bench/0","kind":"series","epoch":"ab","offset":42,"resumeToken":"ab.42"}}"#;
        assert_eq!(
            scan(update),
            Seen { kind: Kind::Update, topic: Some(b"bench/0"), offset: Some(42), value: Some(123456) }
        );
    }

    #[test]
    fn control_messages_are_told_apart() {
        let snapshot =
            br#"{"type":"snapshot","widgetId":"w0","ts":1,"series":[],"meta":{"topic":"bench/3","offset":7}}"#;
        assert_eq!(scan(snapshot).kind, Kind::Start);
        assert_eq!(scan(snapshot).offset, Some(7));
        assert_eq!(scan(snapshot).topic, Some(&b"bench/3"[..]));
        assert_eq!(scan(br#"{"type":"subscribed","topic":"bench/0","offset":0}"#).kind, Kind::Start);
        assert_eq!(scan(br#"{"type":"gap","widgetId":"w0","reason":"lagging"}"#).kind, Kind::Gap);
        assert_eq!(scan(br#"{"type":"welcome","connectionId":"1"}"#).kind, Kind::Other);
    }

    #[test]
    fn a_baseline_broadcast_reads_like_an_update() {
        let message = br#"{"topic":"bench/1","offset":9,"series":[{"value":77}]}"#;
        assert_eq!(
            scan(message),
            Seen { kind: Kind::Update, topic: Some(b"bench/1"), offset: Some(9), value: Some(77) }
        );
    }

    #[test]
    fn publish_answers_carry_the_offset() {
        assert_eq!(published_offset(br#"{"topic":"bench/0","kind":"series","offset":12}"#), Some(12));
        assert_eq!(published_offset(b"{}"), None);
    }
}
