//! The benchmark's WebSocket client: a handshake and a frame reader over one reused buffer, and
//! nothing else.
//!
//! Written by hand because the generator shares two cores with the server it measures: it must
//! spend less per message than the server does, or its own queueing becomes the figure. A general
//! client (tungstenite) allocates a message per frame and checks its UTF-8; this one reads whatever
//! the socket has in one `read`, walks the frames in place and hands out borrowed payloads, so many
//! frames written in one go cost one wake-up and one syscall here too. What it does not need it
//! refuses: fragmented messages, extensions, payloads over 16 MiB.

use anyhow::{Context, bail};
use std::net::{IpAddr, SocketAddr};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;
const MAX_PAYLOAD: usize = 16 << 20;
const READ_CHUNK: usize = 16 * 1024;

/// What one read of the socket holds, frame by frame.
pub enum Frame<'a> {
    Text(&'a [u8]),
    /// The server closed the connection (a close frame, or the end of the stream).
    Closed,
}

pub struct WsClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Frames to send (pongs, subscriptions) and how much of them is sent: kept here, not in a
    /// future, so that `next` may be cancelled (as `select!` does) without losing half a frame.
    outgoing: Vec<u8>,
    sent: usize,
}

/// A WebSocket upgrade of `path` on `server`, from the local address `from`; `cookie` and `origin`
/// are sent when given.
pub async fn connect(
    server: SocketAddr,
    from: IpAddr,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> anyhow::Result<WsClient> {
    let mut stream = dial(server, from).await?;
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: bGl2ZWRhc2gtYmVuY2gtMQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if let Some(origin) = origin {
        request.push_str(&format!("Origin: {origin}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = vec![0; READ_CHUNK];
    let (head_end, end) = read_head(&mut stream, &mut buf).await?;
    let mut client = WsClient { stream, buf, start: 0, end, outgoing: Vec::new(), sent: 0 };
    let head = String::from_utf8_lossy(&client.buf[..head_end]);
    if !head.starts_with("HTTP/1.1 101") {
        bail!("upgrade refused: {}", head.lines().next().unwrap_or_default());
    }
    client.start = head_end;
    Ok(client)
}

/// A TCP connection to `server` from the local address `from`, without Nagle's delay.
pub async fn dial(server: SocketAddr, from: IpAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let stream = socket.connect(server).await.with_context(|| format!("connecting to {server}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads an HTTP response's head into `buf`: where the head ends, and how much of `buf` was read
/// (the body may have begun).
pub async fn read_head(stream: &mut TcpStream, buf: &mut [u8]) -> anyhow::Result<(usize, usize)> {
    let mut end = 0;
    loop {
        if let Some(at) = memchr::memmem::find(&buf[..end], b"\r\n\r\n") {
            return Ok((at + 4, end));
        }
        if end == buf.len() {
            bail!("the response head is over {} bytes", buf.len());
        }
        match stream.read(&mut buf[end..]).await? {
            0 => bail!("the server closed the connection before answering"),
            n => end += n,
        }
    }
}

impl WsClient {
    /// Sends a text message (masked, as a client must).
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        masked_frame(&mut self.outgoing, 0x80 | OPCODE_TEXT, text.as_bytes(), rand::random());
        self.send_outgoing().await
    }

    /// The next text message, or `Closed`. Pings are answered; pongs and binary messages skipped.
    /// Cancel-safe: what was read or is still to be sent stays in the client.
    pub async fn next(&mut self) -> anyhow::Result<Frame<'_>> {
        loop {
            match parse(&self.buf[self.start..self.end])? {
                Some(parsed) => {
                    let payload = self.start + parsed.header..self.start + parsed.header + parsed.len;
                    self.start = payload.end;
                    match parsed.opcode {
                        OPCODE_TEXT => return Ok(Frame::Text(&self.buf[payload])),
                        OPCODE_CLOSE => return Ok(Frame::Closed),
                        OPCODE_PING => {
                            let mask = rand::random();
                            masked_frame(&mut self.outgoing, 0x80 | OPCODE_PONG, &self.buf[payload], mask)
                        }
                        OPCODE_PONG | OPCODE_BINARY => {}
                        other => bail!("unexpected opcode {other:#x}"),
                    }
                }
                None => {
                    self.send_outgoing().await?;
                    if self.fill().await? == 0 {
                        return Ok(Frame::Closed);
                    }
                }
            }
        }
    }

    /// Reads what the socket has into the buffer, moving unread bytes to its front first and
    /// growing it only for a frame larger than the buffer; the number of bytes read.
    async fn fill(&mut self) -> anyhow::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    async fn send_outgoing(&mut self) -> anyhow::Result<()> {
        while self.sent < self.outgoing.len() {
            self.sent += self.stream.write(&self.outgoing[self.sent..]).await?;
        }
        self.outgoing.clear();
        self.sent = 0;
        Ok(())
    }
}

/// A complete frame at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    opcode: u8,
    header: usize,
    len: usize,
}

/// The frame at the start of `bytes`, `None` while it is incomplete. Server frames are unmasked.
fn parse(bytes: &[u8]) -> anyhow::Result<Option<Parsed>> {
    if bytes.len() < 2 {
        return Ok(None);
    }
    let (first, second) = (bytes[0], bytes[1]);
    if first & 0x80 == 0 || first & 0x0F == 0 {
        bail!("fragmented messages are not supported");
    }
    if first & 0x70 != 0 || second & 0x80 != 0 {
        bail!("the server sent reserved bits or a masked frame");
    }
    let (header, len) = match second & 0x7F {
        126 if bytes.len() >= 4 => (4, usize::from(u16::from_be_bytes([bytes[2], bytes[3]]))),
        127 if bytes.len() >= 10 => (10, u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize),
        126 | 127 => return Ok(None),
        len => (2, usize::from(len)),
    };
    if len > MAX_PAYLOAD {
        bail!("a {len}-byte frame is over the generator's limit");
    }
    Ok((bytes.len() >= header + len).then_some(Parsed { opcode: first & 0x0F, header, len }))
}

/// Appends a client frame (masked) to `frame`.
fn masked_frame(frame: &mut Vec<u8>, first: u8, payload: &[u8], mask: [u8; 4]) {
    frame.push(first);
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_every_length_encoding_parse() {
        assert_eq!(parse(&[0x81, 0x03, b'a', b'b', b'c']).unwrap(), Some(Parsed { opcode: 1, header: 2, len: 3 }));
        assert_eq!(parse(&[0x81, 0x03, b'a']).unwrap(), None, "incomplete payload");
        let mut medium = vec![0x81, 126, 0x01, 0x00];
        medium.resize(4 + 256, b'x');
        assert_eq!(parse(&medium).unwrap(), Some(Parsed { opcode: 1, header: 4, len: 256 }));
        let mut long = vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(parse(&long).unwrap(), None);
        long.resize(10 + 65536, 0);
        assert_eq!(parse(&long).unwrap(), Some(Parsed { opcode: 2, header: 10, len: 65536 }));
        assert!(parse(&[0x01, 0x00]).is_err(), "a fragment");
        assert!(parse(&[0x81, 0x80, 0, 0, 0, 0]).is_err(), "a masked server frame");
    }

    #[test]
    fn a_masked_frame_unmasks_to_its_payload() {
        let mask = [1, 2, 3, 4];
        let mut frame = Vec::new();
        masked_frame(&mut frame, 0x81, b"hello", mask);
        assert_eq!(&frame[..2], &[0x81, 0x85]);
        let unmasked: Vec<u8> = frame[6..].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        assert_eq!(unmasked, b"hello");
    }
}
