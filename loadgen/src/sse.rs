//! The benchmark's Server-Sent Events client: a GET, a chunked-body decoder and an event splitter
//! over reused buffers, for the reason `wire` gives (the generator must cost less than the server).
//! livedash writes every event of a batch in one chunk; one read here walks them all in place.

use crate::wire;
use anyhow::{Context, bail};
use std::net::{IpAddr, SocketAddr};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const READ_CHUNK: usize = 16 * 1024;
/// An event larger than this is refused (livedash's are a few hundred bytes; snapshots a few KB).
const MAX_EVENT: usize = 4 << 20;

/// One event: its name (`message` when it has none) and its data.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub name: &'a [u8],
    pub data: &'a [u8],
}

pub struct SseClient {
    stream: TcpStream,
    raw: Vec<u8>,
    /// Raw bytes not yet decoded are `raw[raw_start..raw_end]`.
    raw_start: usize,
    raw_end: usize,
    chunks: ChunkDecoder,
    /// The decoded body: events not yet handed out are `body[body_start..]`.
    body: Vec<u8>,
    body_start: usize,
}

/// Opens `path` on `server` from the local address `from` as an event stream, with `cookie`.
pub async fn connect(server: SocketAddr, from: IpAddr, path: &str, cookie: &str) -> anyhow::Result<SseClient> {
    let mut stream = wire::dial(server, from).await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nAccept: text/event-stream\r\nCookie: {cookie}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = vec![0; READ_CHUNK];
    let (head_end, end) = wire::read_head(&mut stream, &mut raw).await?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        bail!("the stream was refused: {}", head.lines().next().unwrap_or_default());
    }
    if !head.contains("transfer-encoding: chunked") {
        bail!("expected a chunked event stream, got: {head}");
    }
    Ok(SseClient {
        stream,
        raw,
        raw_start: head_end,
        raw_end: end,
        chunks: ChunkDecoder::default(),
        body: Vec::with_capacity(READ_CHUNK),
        body_start: 0,
    })
}

impl SseClient {
    /// The next event, or `None` when the stream ended. Cancel-safe: whatever was read stays here.
    pub async fn next(&mut self) -> anyhow::Result<Option<Event<'_>>> {
        loop {
            if let Some((start, end)) = find_event(&self.body[self.body_start..]) {
                let at = self.body_start;
                self.body_start += end;
                return Ok(Some(parse_event(&self.body[at + start..at + end])));
            }
            // Keep only what is unread, then decode what the socket gave.
            if self.body_start > 0 {
                self.body.drain(..self.body_start);
                self.body_start = 0;
            }
            if self.body.len() > MAX_EVENT {
                bail!("an event over {MAX_EVENT} bytes");
            }
            let used = self.chunks.feed(&self.raw[self.raw_start..self.raw_end], &mut self.body)?;
            self.raw_start += used;
            // Events that came with the last chunk are handed out before the end.
            if find_event(&self.body).is_some() {
                continue;
            }
            if self.chunks.ended {
                return Ok(None);
            }
            // Nothing complete yet: read more, after what is left (a size line cut in two).
            self.raw.copy_within(self.raw_start..self.raw_end, 0);
            self.raw_end -= self.raw_start;
            self.raw_start = 0;
            if self.raw_end == self.raw.len() {
                bail!("a chunk size line over {} bytes", self.raw.len());
            }
            let read = self.stream.read(&mut self.raw[self.raw_end..]).await.context("reading the stream")?;
            if read == 0 {
                return Ok(None);
            }
            self.raw_end += read;
        }
    }
}

/// HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), without trailers or extensions' meaning.
#[derive(Debug, Default)]
struct ChunkDecoder {
    /// Bytes of the current chunk's data still to come.
    left: usize,
    /// The CRLF after a chunk's data is still to come.
    after_data: bool,
    ended: bool,
}

impl ChunkDecoder {
    /// Decodes what `input` holds into `out`; returns how much of `input` it used (a size line cut
    /// in two waits for the rest).
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> anyhow::Result<usize> {
        let mut at = 0;
        while at < input.len() && !self.ended {
            if self.left > 0 {
                let take = self.left.min(input.len() - at);
                out.extend_from_slice(&input[at..at + take]);
                self.left -= take;
                at += take;
                self.after_data = self.left == 0;
                continue;
            }
            let Some(line) = memchr::memmem::find(&input[at..], b"\r\n") else { break };
            let text = &input[at..at + line];
            at += line + 2;
            if self.after_data {
                if !text.is_empty() {
                    bail!("chunk data longer than its size");
                }
                self.after_data = false;
                continue;
            }
            let size = text.split(|b| *b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size).ok().and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
            match size.context("a malformed chunk size")? {
                0 => self.ended = true,
                n => self.left = n,
            }
        }
        Ok(at)
    }
}

/// The first complete event in `body`: where it starts (after blank lines) and where it ends
/// (after its blank line).
fn find_event(body: &[u8]) -> Option<(usize, usize)> {
    let start = body.iter().position(|b| *b != b'\n').unwrap_or(body.len());
    memchr::memmem::find(&body[start..], b"\n\n").map(|end| (start, start + end + 2))
}

/// An event's `event:` and `data:` lines (livedash sends one data line; comments and `id:`,
/// `retry:` are skipped).
fn parse_event(event: &[u8]) -> Event<'_> {
    let mut parsed = Event { name: b"message", data: b"" };
    for line in event.split(|b| *b == b'\n') {
        if let Some(name) = line.strip_prefix(b"event: ") {
            parsed.name = name;
        } else if let Some(data) = line.strip_prefix(b"data: ") {
            parsed.data = data;
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_decode_whole_and_cut_anywhere() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for cut in 0..wire.len() {
            let mut decoder = ChunkDecoder::default();
            let mut out = Vec::new();
            let used = decoder.feed(&wire[..cut], &mut out).unwrap();
            let mut rest = wire[used..].to_vec();
            let used = decoder.feed(&rest, &mut out).unwrap();
            rest.drain(..used);
            assert_eq!(out, b"hello, world", "cut at {cut}");
            assert!(decoder.ended, "cut at {cut}");
        }
    }

    #[test]
    fn a_bad_chunk_is_an_error() {
        assert!(ChunkDecoder::default().feed(b"zz\r\n", &mut Vec::new()).is_err());
        assert!(ChunkDecoder::default().feed(b"2\r\nabc\r\n", &mut Vec::new()).is_err());
    }

    #[test]
    fn events_split_on_blank_lines() {
        let body = b"retry: 1000\n\nevent: series_update\nid: abc\ndata: {\"a\":1}\n\nevent: heart";
        let (start, end) = find_event(body).unwrap();
        assert_eq!(parse_event(&body[start..end]), Event { name: b"message", data: b"" });
        let rest = &body[end..];
        let (start, end) = find_event(rest).unwrap();
        assert_eq!(parse_event(&rest[start..end]), Event { name: b"series_update", data: br#"{"a":1}"# });
        assert_eq!(find_event(&rest[end..]), None, "an event cut short waits");
    }
}
