//! The HTTP/1.1 client behind `fetch`: GET with redirects, `Content-Length`, chunked and
//! close-delimited bodies, streamed to a [`Sink`] as they arrive. The byte transport (TCP, or
//! TLS over it) comes from a [`Connector`], so the same code runs over Keel's stack and, in
//! tests, over scripted servers.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::url::{Url, UrlError};

/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 10;

/// Why a fetch failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    Url(UrlError),
    /// The transport failed (no route, refused, timeout, DNS, TLS...), as the connector said.
    Net(String),
    /// The server answered with an error status.
    Status(u16, String),
    TooManyRedirects,
    /// A redirect without a usable `Location`.
    BadRedirect,
    /// The response is not HTTP/1.x as we know it.
    Malformed(&'static str),
    /// The connection ended before the body did.
    Truncated {
        got: u64,
        expected: Option<u64>,
    },
    /// Where the body goes refused it (no space, no memory...).
    Sink(String),
    /// Stopped by the user (Ctrl-C).
    Interrupted,
}

impl core::fmt::Display for FetchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FetchError::Url(e) => write!(f, "{e}"),
            FetchError::Net(e) => f.write_str(e),
            FetchError::Status(code, reason) => write!(f, "the server answered {code} {reason}"),
            FetchError::TooManyRedirects => write!(f, "more than {MAX_REDIRECTS} redirects"),
            FetchError::BadRedirect => f.write_str("a redirect without a usable Location"),
            FetchError::Malformed(what) => write!(f, "malformed response: {what}"),
            FetchError::Truncated { got, expected: Some(n) } => {
                write!(f, "the server closed the connection early ({got} of {n} bytes)")
            }
            FetchError::Truncated { got, expected: None } => {
                write!(f, "the server closed the connection early ({got} bytes, body incomplete)")
            }
            FetchError::Sink(e) => f.write_str(e),
            FetchError::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// A byte stream to a server.
pub trait Connection {
    /// Sends all of `data`.
    fn send_all(&mut self, data: &[u8]) -> Result<(), FetchError>;
    /// Receives some bytes; 0 at the end of the stream.
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, FetchError>;
}

/// Opens connections for URLs (plain TCP for http, TLS for https).
pub trait Connector {
    fn connect(&mut self, url: &Url) -> Result<Box<dyn Connection + '_>, FetchError>;
}

/// Where the body goes.
pub trait Sink {
    /// The final response's status and length (if known), before any data.
    fn begin(&mut self, status: u16, length: Option<u64>) -> Result<(), FetchError>;
    fn write(&mut self, data: &[u8]) -> Result<(), FetchError>;
}

/// A response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// A header's value (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading a size line (digits so far).
    Size(u64, bool),
    Data(u64),
    /// The CRLF after a chunk's data: bytes still to skip.
    DataEnd(u8),
    /// Trailer lines after the last chunk; true once the current line has content.
    Trailer(bool, bool),
    Done,
}

/// Parses a response as bytes arrive.
pub struct Reader {
    head_buf: Vec<u8>,
    head: Option<Head>,
    body: Body,
    got: u64,
    expected: Option<u64>,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    pub fn new() -> Reader {
        Reader { head_buf: Vec::new(), head: None, body: Body::None, got: 0, expected: None }
    }

    /// The head, once it has been read.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// The body's length if the server said it.
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// True once the whole body has been read (for delimited bodies).
    pub fn complete(&self) -> bool {
        self.head.is_some() && matches!(self.body, Body::Length(0) | Body::None | Body::Chunked(Chunk::Done))
    }

    /// Feeds bytes while the head is incomplete: Some(n) once it is, with the n input bytes
    /// that belonged to it (the rest are body bytes, for [`Reader::feed_body`]).
    pub fn feed_head(&mut self, input: &[u8]) -> Result<Option<usize>, FetchError> {
        if self.head.is_some() {
            return Ok(Some(0));
        }
        let before = self.head_buf.len();
        self.head_buf.extend_from_slice(input);
        let Some(end) = find(&self.head_buf, b"\r\n\r\n") else {
            if self.head_buf.len() > MAX_HEAD {
                return Err(FetchError::Malformed("response head too large"));
            }
            return Ok(None);
        };
        let head = parse_head(&self.head_buf[..end])?;
        self.body = body_of(&head)?;
        if let Body::Length(n) = self.body {
            self.expected = Some(n);
        }
        self.head = Some(head);
        self.head_buf = Vec::new();
        Ok(Some(end + 4 - before))
    }

    /// Feeds body bytes; the decoded body goes to `data` (bytes past the body's end are
    /// ignored).
    pub fn feed_body(
        &mut self,
        mut input: &[u8],
        data: &mut dyn FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<(), FetchError> {
        while !input.is_empty() {
            match &mut self.body {
                Body::None | Body::Length(0) | Body::Chunked(Chunk::Done) => return Ok(()),
                Body::Length(n) => {
                    let take = (*n).min(input.len() as u64) as usize;
                    *n -= take as u64;
                    self.got += take as u64;
                    data(&input[..take])?;
                    input = &input[take..];
                }
                Body::UntilClose => {
                    self.got += input.len() as u64;
                    data(input)?;
                    input = &[];
                }
                Body::Chunked(c) => {
                    let (used, out) = chunk_step(c, input)?;
                    if let Some(bytes) = out {
                        self.got += bytes.len() as u64;
                        data(bytes)?;
                    }
                    input = &input[used..];
                }
            }
        }
        Ok(())
    }

    /// Feeds any received bytes (head, then body).
    pub fn feed(
        &mut self,
        input: &[u8],
        data: &mut dyn FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<(), FetchError> {
        match self.feed_head(input)? {
            Some(used) => self.feed_body(&input[used..], data),
            None => Ok(()),
        }
    }

    /// The connection ended: fine if the body is complete (or runs to the close).
    pub fn finish(&self) -> Result<(), FetchError> {
        if self.head.is_none() {
            return Err(if self.head_buf.is_empty() {
                FetchError::Malformed("the server closed the connection without answering")
            } else {
                FetchError::Malformed("the response head was cut off")
            });
        }
        match self.body {
            Body::UntilClose => Ok(()),
            _ if self.complete() => Ok(()),
            _ => Err(FetchError::Truncated { got: self.got, expected: self.expected }),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(bytes: &[u8]) -> Result<Head, FetchError> {
    let text = core::str::from_utf8(bytes).map_err(|_| FetchError::Malformed("head is not text"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(FetchError::Malformed("not an HTTP/1.x response"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or(FetchError::Malformed("bad status code"))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(FetchError::Malformed("header line without ':'"))?;
        if name.is_empty() || name.contains(' ') {
            return Err(FetchError::Malformed("bad header name"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Head { status, reason, headers })
}

fn body_of(head: &Head) -> Result<Body, FetchError> {
    if head.status < 200 || head.status == 204 || head.status == 304 {
        return Ok(Body::None);
    }
    if let Some(te) = head.header("transfer-encoding") {
        if te.to_ascii_lowercase().split(',').any(|t| t.trim() == "chunked") {
            return Ok(Body::Chunked(Chunk::Size(0, false)));
        }
    }
    match head.header("content-length") {
        Some(v) => v.trim().parse::<u64>().map(Body::Length).map_err(|_| FetchError::Malformed("bad Content-Length")),
        None => Ok(Body::UntilClose),
    }
}

/// One step of chunked decoding: (input bytes used, body bytes produced).
fn chunk_step<'a>(c: &mut Chunk, input: &'a [u8]) -> Result<(usize, Option<&'a [u8]>), FetchError> {
    let bad = FetchError::Malformed("bad chunked encoding");
    match c {
        Chunk::Size(n, ext) => {
            for (i, &b) in input.iter().enumerate() {
                match b {
                    b'\n' => {
                        *c = if *n == 0 { Chunk::Trailer(false, false) } else { Chunk::Data(*n) };
                        return Ok((i + 1, None));
                    }
                    b'\r' => {}
                    _ if *ext => {}
                    b';' => *ext = true,
                    _ => {
                        let d = (b as char).to_digit(16).ok_or(bad.clone())?;
                        *n = n.checked_mul(16).and_then(|v| v.checked_add(u64::from(d))).ok_or(bad.clone())?;
                    }
                }
            }
            Ok((input.len(), None))
        }
        Chunk::Data(n) => {
            let take = (*n).min(input.len() as u64) as usize;
            *n -= take as u64;
            if *n == 0 {
                *c = Chunk::DataEnd(2);
            }
            Ok((take, Some(&input[..take])))
        }
        Chunk::DataEnd(left) => {
            let b = input[0];
            if (*left == 2 && b == b'\r') || b == b'\n' {
                *c = if b == b'\n' { Chunk::Size(0, false) } else { Chunk::DataEnd(1) };
                Ok((1, None))
            } else {
                Err(bad)
            }
        }
        Chunk::Trailer(content, _) => {
            let b = input[0];
            match b {
                b'\n' if !*content => *c = Chunk::Done,
                b'\n' => *c = Chunk::Trailer(false, false),
                b'\r' => {}
                _ => *c = Chunk::Trailer(true, false),
            }
            Ok((1, None))
        }
        Chunk::Done => Ok((input.len(), None)),
    }
}

/// The GET request for `url`.
pub fn request(url: &Url) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: keel-fetch/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// What a successful fetch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub url: Url,
    pub status: u16,
    pub bytes: u64,
    pub redirects: usize,
}

/// GETs `url`, following redirects, streaming the final body to `sink`.
pub fn fetch(url: &str, connector: &mut dyn Connector, sink: &mut dyn Sink) -> Result<Fetched, FetchError> {
    let mut url = Url::parse(url).map_err(FetchError::Url)?;
    let mut buf = alloc::vec![0u8; 16 * 1024];
    for redirects in 0..=MAX_REDIRECTS {
        let mut conn = connector.connect(&url)?;
        conn.send_all(&request(&url))?;
        let mut reader = Reader::new();
        let mut next = None;
        loop {
            let n = conn.recv(&mut buf)?;
            if n == 0 {
                reader.finish()?;
                break;
            }
            let mut data = &buf[..n];
            if reader.head().is_none() {
                let Some(used) = reader.feed_head(data)? else { continue };
                data = &data[used..];
                let head = reader.head().ok_or(FetchError::Malformed("no head"))?;
                match head.status {
                    301 | 302 | 303 | 307 | 308 => {
                        let location = head.header("location").ok_or(FetchError::BadRedirect)?;
                        next = Some(url.join(location).map_err(|_| FetchError::BadRedirect)?);
                        break;
                    }
                    200..=299 => sink.begin(head.status, reader.expected())?,
                    code => return Err(FetchError::Status(code, head.reason.clone())),
                }
            }
            reader.feed_body(data, &mut |d| sink.write(d))?;
            if reader.complete() {
                break;
            }
        }
        match next {
            Some(u) => url = u,
            None => {
                let status = reader.head().map_or(0, |h| h.status);
                return Ok(Fetched { url, status, bytes: reader.got, redirects });
            }
        }
    }
    Err(FetchError::TooManyRedirects)
}
