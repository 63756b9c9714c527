//! The little HTTP/1.1 that `load --mode http` speaks: one `GET /` request
//! per round and an incremental reader of one response (status line,
//! headers, then a body delimited by Content-Length, chunked encoding or
//! the end of the connection). Pure: bytes in, a verdict out.
//!
//! Hand-written: the client is one epoll state machine over non-blocking
//! sockets, and the HTTP crates either bring their own runtime (hyper) or
//! parse only the head (httparse); what is needed here is the framing of
//! one response, in about 200 lines.

/// The longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size line accepted (hex size + extensions).
const MAX_LINE: usize = 4096;

/// `GET / HTTP/1.1` for `host`, asking the server to keep the connection
/// open for another round or to close it after this one.
pub(super) fn request(host: &str, keep_alive: bool) -> Vec<u8> {
    let conn = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sockmap-load\r\nAccept: */*\r\nConnection: {conn}\r\n\r\n"
    )
    .into_bytes()
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Done {
    pub status: u16,
    /// The status line, escaped and clipped for messages
    /// ("HTTP/1.1 503 Service Unavailable").
    pub status_line: String,
    /// The server will close the connection (`Connection: close`, or a
    /// body that ends with the connection).
    pub closes: bool,
    /// Bytes fed after the end of this response (0 for one request at a time).
    pub extra: usize,
}

#[derive(Debug)]
enum State {
    Head(Vec<u8>),
    /// Content-Length bytes still to come.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize(Vec<u8>),
    /// Chunk data still to come, then its CRLF (2 bytes).
    ChunkData(u64),
    /// The CRLF after a chunk's data: bytes of it still to come.
    ChunkEnd(u8),
    /// Trailer lines after the last chunk, until an empty line.
    Trailers(Vec<u8>),
    /// The body ends when the server closes.
    UntilClose,
    Done,
}

/// One response being read.
#[derive(Debug)]
pub(super) struct Response {
    state: State,
    status: u16,
    status_line: String,
    closes: bool,
}

impl Response {
    pub(super) fn new() -> Self {
        Response {
            state: State::Head(Vec::new()),
            status: 0,
            status_line: String::new(),
            closes: false,
        }
    }

    /// Feed bytes read from the socket. `Ok(Some(done))` once the response
    /// is complete; `Ok(None)` to read more; `Err` when it is not HTTP.
    pub(super) fn feed(&mut self, mut data: &[u8]) -> Result<Option<Done>, String> {
        loop {
            if let State::Done = self.state {
                return Ok(Some(self.done(data.len())));
            }
            if data.is_empty() {
                return Ok(None);
            }
            data = self.step(data)?;
        }
    }

    /// The server closed the connection: complete if the body was
    /// delimited by the close, an error otherwise.
    pub(super) fn eof(&mut self) -> Result<Done, String> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(self.done(0))
            }
            State::Head(ref h) if h.is_empty() => {
                Err("the server closed the connection without a response".into())
            }
            _ => Err("the server closed the connection in the middle of a response".into()),
        }
    }

    fn done(&self, extra: usize) -> Done {
        Done {
            status: self.status,
            status_line: self.status_line.clone(),
            closes: self.closes,
            extra,
        }
    }

    /// Consume what the current state can from `data`; return the rest.
    fn step<'a>(&mut self, data: &'a [u8]) -> Result<&'a [u8], String> {
        match &mut self.state {
            State::Head(head) => {
                let before = head.len();
                head.extend_from_slice(data);
                // The end of the head may straddle two reads: search from
                // just before the new bytes.
                let from = before.saturating_sub(3);
                let Some(end) = find(&head[from..], b"\r\n\r\n").map(|i| from + i + 4) else {
                    if head.len() > MAX_HEAD {
                        return Err(format!("response head longer than {MAX_HEAD} bytes"));
                    }
                    return Ok(&[]);
                };
                let head = std::mem::take(head);
                self.start_body(&head[..end])?;
                Ok(&data[end - before..])
            }
            State::Body(left) => {
                let n = (*left).min(data.len() as u64);
                *left -= n;
                if *left == 0 {
                    self.state = State::Done;
                }
                Ok(&data[n as usize..])
            }
            State::ChunkSize(line) => {
                let Some(i) = data.iter().position(|&b| b == b'\n') else {
                    line.extend_from_slice(data);
                    if line.len() > MAX_LINE {
                        return Err("chunk-size line too long".into());
                    }
                    return Ok(&[]);
                };
                line.extend_from_slice(&data[..i]);
                let size = chunk_size(line)?;
                self.state = if size == 0 {
                    State::Trailers(Vec::new())
                } else {
                    State::ChunkData(size)
                };
                Ok(&data[i + 1..])
            }
            State::ChunkData(left) => {
                let n = (*left).min(data.len() as u64);
                *left -= n;
                if *left == 0 {
                    self.state = State::ChunkEnd(2);
                }
                Ok(&data[n as usize..])
            }
            State::ChunkEnd(left) => {
                let want: &[u8] = if *left == 2 { b"\r\n" } else { b"\n" };
                let n = (*left as usize).min(data.len());
                if data[..n] != want[..n] {
                    return Err("chunk data not followed by CRLF".into());
                }
                *left -= n as u8;
                if *left == 0 {
                    self.state = State::ChunkSize(Vec::new());
                }
                Ok(&data[n..])
            }
            State::Trailers(line) => {
                let Some(i) = data.iter().position(|&b| b == b'\n') else {
                    line.extend_from_slice(data);
                    if line.len() > MAX_HEAD {
                        return Err("trailers too long".into());
                    }
                    return Ok(&[]);
                };
                line.extend_from_slice(&data[..i]);
                if line.strip_suffix(b"\r").unwrap_or(line).is_empty() {
                    self.state = State::Done;
                } else {
                    line.clear();
                }
                Ok(&data[i + 1..])
            }
            // The close will tell; count and drop the bytes.
            State::UntilClose => Ok(&[]),
            State::Done => Ok(data),
        }
    }

    /// Parse the head (status line + headers, ending in CRLF CRLF) and
    /// choose how the body is delimited (RFC 9112 section 6.3).
    fn start_body(&mut self, head: &[u8]) -> Result<(), String> {
        let text =
            std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = parse_status(status_line)?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        for line in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("malformed header line '{}'", clip(line)));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n = value
                    .parse::<u64>()
                    .map_err(|_| format!("invalid Content-Length '{}'", clip(value)))?;
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                close |= value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"));
            }
        }
        if (100..200).contains(&status) && status != 101 {
            // Interim (100 Continue, 103 Early Hints): the real one follows.
            self.state = State::Head(Vec::new());
            return Ok(());
        }
        self.status = status;
        self.status_line = clip(status_line);
        self.closes = close || status_line.starts_with("HTTP/1.0");
        self.state = if status == 204 || status == 304 || status == 101 {
            State::Done
        } else if chunked {
            State::ChunkSize(Vec::new())
        } else if let Some(n) = length {
            if n == 0 {
                State::Done
            } else {
                State::Body(n)
            }
        } else {
            self.closes = true;
            State::UntilClose
        };
        Ok(())
    }
}

fn parse_status(line: &str) -> Result<u16, String> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(format!("not an HTTP/1.x status line: '{}'", clip(line)));
    }
    code.parse::<u16>()
        .ok()
        .filter(|c| (100..=999).contains(c))
        .ok_or_else(|| format!("invalid status code in '{}'", clip(line)))
}

fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let hex = line.split(|&b| b == b';').next().unwrap_or_default();
    let hex = std::str::from_utf8(hex).unwrap_or_default().trim();
    u64::from_str_radix(hex, 16).map_err(|_| {
        format!(
            "invalid chunk size '{}'",
            clip(&String::from_utf8_lossy(line))
        )
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// At most 60 characters of something the server sent, escaped.
fn clip(s: &str) -> String {
    let cut: String = s.chars().take(60).collect();
    crate::escape::terminal(&cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `bytes` in pieces of `step` bytes; the first completion.
    fn feed_in(bytes: &[u8], step: usize) -> Result<Option<Done>, String> {
        let mut r = Response::new();
        for piece in bytes.chunks(step.max(1)) {
            if let Some(d) = r.feed(piece)? {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    fn done(status: u16, line: &str, closes: bool) -> Option<Done> {
        Some(Done {
            status,
            status_line: line.into(),
            closes,
            extra: 0,
        })
    }

    #[test]
    fn requests_say_host_and_connection() {
        let r = String::from_utf8(request("127.0.0.1:8080", true)).expect("ascii");
        assert_eq!(
            r,
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: sockmap-load\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
        );
        let r = String::from_utf8(request("[::1]:80", false)).expect("ascii");
        assert!(
            r.contains("\r\nHost: [::1]:80\r\n") && r.contains("\r\nConnection: close\r\n\r\n")
        );
    }

    #[test]
    fn content_length_in_any_split() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\nhello";
        for step in 1..=resp.len() {
            assert_eq!(
                feed_in(resp, step),
                Ok(done(200, "HTTP/1.1 200 OK", false)),
                "step {step}"
            );
        }
        // One byte short: not done yet.
        assert_eq!(feed_in(&resp[..resp.len() - 1], 7), Ok(None));
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     4\r\nWiki\r\n5;name=x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for step in 1..=resp.len() {
            assert_eq!(
                feed_in(resp, step),
                Ok(done(200, "HTTP/1.1 200 OK", false)),
                "step {step}"
            );
        }
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(feed_in(bad, 100), Err("invalid chunk size 'zz'".into()));
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY";
        assert_eq!(
            feed_in(bad, 100),
            Err("chunk data not followed by CRLF".into())
        );
    }

    #[test]
    fn bodies_without_length_end_with_the_connection() {
        let mut r = Response::new();
        assert_eq!(r.feed(b"HTTP/1.0 200 OK\r\n\r\nsome body"), Ok(None));
        assert_eq!(r.feed(b" more"), Ok(None));
        assert_eq!(
            r.eof(),
            Ok(Done {
                status: 200,
                status_line: "HTTP/1.0 200 OK".into(),
                closes: true,
                extra: 0
            })
        );
        let mut r = Response::new();
        assert_eq!(
            r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            Ok(None)
        );
        assert_eq!(
            r.eof(),
            Err("the server closed the connection in the middle of a response".into())
        );
        assert_eq!(
            Response::new().eof(),
            Err("the server closed the connection without a response".into())
        );
    }

    #[test]
    fn no_body_statuses_interim_responses_and_close() {
        let r = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n";
        assert_eq!(
            feed_in(r, 5),
            Ok(done(304, "HTTP/1.1 304 Not Modified", false))
        );
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            feed_in(r, 3),
            Ok(done(503, "HTTP/1.1 503 Service Unavailable", true))
        );
        let mut resp = Response::new();
        let d = resp
            .feed(b"HTTP/1.1 204 No Content\r\n\r\nEXTRA")
            .expect("ok")
            .expect("done");
        assert_eq!(d.extra, 5);
    }

    #[test]
    fn not_http_is_an_error_naming_what_came() {
        assert_eq!(
            feed_in(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", 4),
            Err("not an HTTP/1.x status line: 'SSH-2.0-OpenSSH_9.2'".into())
        );
        assert_eq!(
            feed_in(b"HTTP/1.1 2000 OK\r\n\r\n", 4),
            Err("not an HTTP/1.x status line: 'HTTP/1.1 2000 OK'".into())
        );
        assert_eq!(
            feed_in(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 4),
            Err("invalid Content-Length 'x'".into())
        );
        assert_eq!(
            feed_in(b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n", 4),
            Err("malformed header line 'broken'".into())
        );
        assert_eq!(
            feed_in(b"HTTP/1.1 200 \x1b]0;x\x07\r\n\r\n", 4).map(|d| d.map(|d| d.status)),
            Ok(None)
        );
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(
            feed_in(&huge, 1000),
            Err(format!("response head longer than {MAX_HEAD} bytes"))
        );
    }
}
