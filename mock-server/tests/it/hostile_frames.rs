//! WebSocket frames that break RFC 6455, written byte by byte to the TCP socket: each is
//! answered with the close code the RFC names (1002, 1007, 1009) and journaled as the server's
//! close, a client's own Close is echoed, and the server still serves afterwards.

use std::time::Duration;

use mock_server::journal::{Closer, JournalEvent};
use mock_server::{Config, MockServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::hostile::still_serves;
use crate::support::{bounded, new_session, start};

pub const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// One client frame: FIN, RSV bits (`0b100` = RSV1), opcode, payload, masked or not.
pub struct Raw {
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: Vec<u8>,
    masked: bool,
    /// Announce this length instead of the payload's (the payload is not sent then).
    declared: Option<u64>,
}

pub fn frame(opcode: u8, payload: impl Into<Vec<u8>>) -> Raw {
    Raw {
        fin: true,
        rsv: 0,
        opcode,
        payload: payload.into(),
        masked: true,
        declared: None,
    }
}

impl Raw {
    fn unfinished(mut self) -> Self {
        self.fin = false;
        self
    }
    fn rsv(mut self, bits: u8) -> Self {
        self.rsv = bits;
        self
    }
    fn unmasked(mut self) -> Self {
        self.masked = false;
        self
    }
    fn declaring(mut self, length: u64) -> Self {
        self.declared = Some(length);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = vec![(u8::from(self.fin) << 7) | (self.rsv << 4) | self.opcode];
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let length = self.declared.unwrap_or(self.payload.len() as u64);
        if length < 126 {
            out.push(mask_bit | length as u8);
        } else if length <= u64::from(u16::MAX) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(length as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&length.to_be_bytes());
        }
        let key = [0x37, 0xfa, 0x21, 0x3d];
        if self.masked {
            out.extend_from_slice(&key);
        }
        if self.declared.is_none() {
            out.extend(
                self.payload.iter().enumerate().map(
                    |(i, b)| {
                        if self.masked { b ^ key[i % 4] } else { *b }
                    },
                ),
            );
        }
        out
    }
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// A WebSocket connection opened by hand on a plain TCP socket.
pub struct RawSocket {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawSocket {
    pub async fn open(server: &MockServer) -> (Self, String) {
        let (token, session) = new_session(server, false).await;
        let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
        let request = format!(
            "GET /ws?session_id={session}&access_token={token} HTTP/1.1\r\nHost: {}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.addr()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut socket = Self {
            stream,
            buffer: Vec::new(),
        };
        let head = loop {
            if let Some(end) = socket.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&socket.buffer[..end]).into_owned();
                socket.buffer.drain(..end + 4);
                break head;
            }
            assert!(
                socket.fill().await,
                "the server closed during the handshake"
            );
        };
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "handshake refused: {head}"
        );
        (socket, session)
    }

    /// Reads more bytes; false at end of stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    pub async fn send(&mut self, frames: &[Raw]) {
        for frame in frames {
            // The server may close before reading everything; that is its answer.
            if self.stream.write_all(&frame.bytes()).await.is_err() {
                return;
            }
        }
    }

    /// Skips data frames until the server's Close: `Some(code)` (1005 for none), `None` when
    /// the TCP connection ended without one.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            if let Some((opcode, payload, used)) = self.parse() {
                self.buffer.drain(..used);
                if opcode == CLOSE {
                    return Some(match payload.get(..2) {
                        Some(code) => u16::from_be_bytes([code[0], code[1]]),
                        None => 1005,
                    });
                }
                continue;
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// One whole server frame from the buffer (server frames are unmasked).
    fn parse(&self) -> Option<(u8, Vec<u8>, usize)> {
        let b = &self.buffer;
        if b.len() < 2 {
            return None;
        }
        let (length, start) = match b[1] & 0x7f {
            126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
            127 => (
                u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = b.get(start..start + length)?;
        Some((b[0] & 0x0f, payload.to_vec(), start + length))
    }
}

/// The close that ended `session`'s only connection, as journaled.
fn journaled_close(server: &MockServer, session: &str) -> Option<(Option<u16>, Closer)> {
    server
        .journal(session)
        .expect("journal")
        .into_iter()
        .find_map(|entry| match entry.event {
            JournalEvent::Close { code, by, .. } => Some((code, by)),
            _ => None,
        })
}

async fn journaled_close_eventually(server: &MockServer, session: &str) -> (Option<u16>, Closer) {
    for _ in 0..200 {
        if let Some(close) = journaled_close(server, session) {
            return close;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no close journaled for {session}");
}

/// How many raw violations `violations` holds (for the hostile suite's count).
pub fn violation_count() -> usize {
    violations().len()
}

/// The violations: name, frames, the code the client must see (RFC 6455 §7.4.1).
fn violations() -> Vec<(&'static str, Vec<Raw>, u16)> {
    const MIB: u64 = 1024 * 1024;
    let nine_mib = vec![b'a'; 9 * MIB as usize];
    vec![
        (
            "invalid UTF-8 in a text frame",
            vec![frame(TEXT, [0xff, 0xfe])],
            1007,
        ),
        (
            "a truncated UTF-8 sequence in a text frame",
            vec![frame(TEXT, [b'{', 0xe2, 0x82])],
            1007,
        ),
        (
            "invalid UTF-8 across the fragments of a text message",
            vec![
                frame(TEXT, [0xe2, 0x82]).unfinished(),
                frame(CONTINUATION, [0x28]),
            ],
            1007,
        ),
        (
            "a Close whose reason is invalid UTF-8",
            vec![frame(CLOSE, close_payload(1000, &[0xc3, 0x28]))],
            1007,
        ),
        (
            "an unmasked text frame",
            vec![frame(TEXT, *b"{}").unmasked()],
            1002,
        ),
        (
            "an unmasked ping",
            vec![frame(PING, *b"x").unmasked()],
            1002,
        ),
        ("data opcode 0x3 (reserved)", vec![frame(0x3, *b"{}")], 1002),
        ("data opcode 0x7 (reserved)", vec![frame(0x7, *b"")], 1002),
        (
            "control opcode 0xB (reserved)",
            vec![frame(0xB, *b"")],
            1002,
        ),
        (
            "control opcode 0xF (reserved)",
            vec![frame(0xF, *b"x")],
            1002,
        ),
        (
            "RSV1 without an extension",
            vec![frame(TEXT, *b"{}").rsv(0b100)],
            1002,
        ),
        ("RSV2 set", vec![frame(BINARY, *b"x").rsv(0b010)], 1002),
        ("RSV3 set", vec![frame(TEXT, *b"{}").rsv(0b001)], 1002),
        (
            "a ping with a 126-byte payload",
            vec![frame(PING, vec![b'p'; 126])],
            1002,
        ),
        (
            "a fragmented ping",
            vec![frame(PING, *b"p").unfinished()],
            1002,
        ),
        (
            "a continuation with no message to continue",
            vec![frame(CONTINUATION, *b"{}")],
            1002,
        ),
        (
            "a new text frame inside a fragmented message",
            vec![frame(TEXT, *b"{").unfinished(), frame(TEXT, *b"}")],
            1002,
        ),
        (
            "a Close with a one-byte payload",
            vec![frame(CLOSE, [0x03])],
            1002,
        ),
        (
            "a Close with code 999",
            vec![frame(CLOSE, close_payload(999, b""))],
            1002,
        ),
        (
            "a Close with code 1005 (never sent on the wire)",
            vec![frame(CLOSE, close_payload(1005, b""))],
            1002,
        ),
        (
            "a Close with code 1006 (never sent on the wire)",
            vec![frame(CLOSE, close_payload(1006, b""))],
            1002,
        ),
        (
            "a Close with code 1015 (never sent on the wire)",
            vec![frame(CLOSE, close_payload(1015, b""))],
            1002,
        ),
        (
            "a Close with code 5000",
            vec![frame(CLOSE, close_payload(5000, b""))],
            1002,
        ),
        (
            "a frame announcing 17 MiB",
            vec![frame(TEXT, *b"").declaring(17 * MIB)],
            1009,
        ),
        (
            "a frame announcing 2^63 bytes",
            vec![frame(BINARY, *b"").declaring(1 << 63)],
            1009,
        ),
        (
            "a message of two 9 MiB fragments",
            vec![
                frame(BINARY, nine_mib.clone()).unfinished(),
                frame(CONTINUATION, nine_mib),
            ],
            1009,
        ),
    ]
}

/// Finding 3: these dropped TCP without a Close frame (the client saw 1006) and were journaled
/// as "closed by client, code null".
#[tokio::test]
async fn each_protocol_violation_is_closed_with_its_rfc_code_and_journaled_as_the_servers() {
    bounded(async {
        let server = start(Config::default()).await;
        let mut wrong = Vec::new();
        for (name, frames, expected) in violations() {
            let (mut socket, session) = RawSocket::open(&server).await;
            socket.send(&frames).await;
            let seen = socket.close_code().await;
            let journaled = journaled_close_eventually(&server, &session).await;
            // Tungstenite answers a Close with a forbidden code itself (1002); that close is
            // journaled with the code the client was sent, as the client's close.
            let expected_journal = if name.starts_with("a Close with code") {
                (Some(expected), Closer::Client)
            } else {
                (Some(expected), Closer::Server)
            };
            if seen != Some(expected) || journaled != expected_journal {
                wrong.push(format!(
                    "{name}: client saw {seen:?}, journal {journaled:?}; expected {expected} / {expected_journal:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        still_serves(&server).await;
    })
    .await;
}

/// Finding 2: a close the client started ended as 1006 at the client (`wasClean=false`).
#[tokio::test]
async fn a_clients_close_is_echoed_with_its_code() {
    bounded(async {
        let server = start(Config::default()).await;
        for (payload, echoed) in [
            (close_payload(1000, b"bye"), 1000),
            (close_payload(1001, b""), 1001),
            (close_payload(4000, b"app"), 4000),
            (close_payload(3003, b""), 3003),
            (Vec::new(), 1005),
        ] {
            let (mut socket, session) = RawSocket::open(&server).await;
            socket.send(&[frame(CLOSE, payload)]).await;
            assert_eq!(socket.close_code().await, Some(echoed), "echo of {echoed}");
            let journaled = journaled_close_eventually(&server, &session).await;
            assert_eq!(journaled, (Some(echoed), Closer::Client));
        }
        still_serves(&server).await;
    })
    .await;
}

/// Valid frames of the same shapes get no close: the violations above are judged, not every
/// unusual frame (negative control for the test itself).
#[tokio::test]
async fn valid_unusual_frames_are_not_closed() {
    bounded(async {
        let server = start(Config::default()).await;
        let (mut socket, _session) = RawSocket::open(&server).await;
        socket
            .send(&[
                frame(PING, vec![b'p'; 125]),
                frame(TEXT, *b"{\"type\":").unfinished(),
                frame(PING, *b"between fragments"),
                frame(
                    CONTINUATION,
                    *b"\"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN\",\"payload\":{}}",
                ),
                frame(BINARY, *b"\x00\x01"),
                frame(TEXT, "é ✓ 🎉".as_bytes()),
                frame(CLOSE, close_payload(1000, b"")),
            ])
            .await;
        assert_eq!(socket.close_code().await, Some(1000));
        still_serves(&server).await;
    })
    .await;
}
