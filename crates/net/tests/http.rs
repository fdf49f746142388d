//! The HTTP client against scripted servers: each test server is a function from the request
//! to the bytes it answers with, delivered in small pieces as a network would.

use std::collections::VecDeque;

use keel_net::http::{fetch, Connection, Connector, FetchError, Sink};
use keel_net::url::Url;

struct Scripted {
    pieces: VecDeque<Vec<u8>>,
    /// Fail with this error instead of returning more data (a reset).
    fail: Option<FetchError>,
}

impl Connection for Scripted {
    fn send_all(&mut self, _data: &[u8]) -> Result<(), FetchError> {
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        match self.pieces.pop_front() {
            Some(p) => {
                buf[..p.len()].copy_from_slice(&p);
                Ok(p.len())
            }
            None => match self.fail.take() {
                Some(e) => Err(e),
                None => Ok(0),
            },
        }
    }
}

/// Answers each URL with a response, cut into pieces of `piece` bytes.
struct Server {
    answer: fn(&Url) -> Vec<u8>,
    piece: usize,
    visited: Vec<String>,
}

impl Connector for Server {
    fn connect(&mut self, url: &Url) -> Result<Box<dyn Connection + '_>, FetchError> {
        self.visited.push(format!("{}:{}{}", url.host, url.port, url.path));
        if url.host == "refused" {
            return Err(FetchError::Net("connection refused".into()));
        }
        let bytes = (self.answer)(url);
        let pieces = bytes.chunks(self.piece).map(|c| c.to_vec()).collect();
        Ok(Box::new(Scripted { pieces, fail: None }))
    }
}

#[derive(Default)]
struct Collect {
    began: Option<(u16, Option<u64>)>,
    body: Vec<u8>,
    limit: Option<usize>,
}

impl Sink for Collect {
    fn begin(&mut self, status: u16, length: Option<u64>) -> Result<(), FetchError> {
        self.began = Some((status, length));
        Ok(())
    }
    fn write(&mut self, data: &[u8]) -> Result<(), FetchError> {
        self.body.extend_from_slice(data);
        match self.limit {
            Some(l) if self.body.len() > l => Err(FetchError::Sink("no space left".into())),
            _ => Ok(()),
        }
    }
}

fn body() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 253) as u8).collect()
}

fn with_length(_: &Url) -> Vec<u8> {
    let b = body();
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-A: b\r\n\r\n", b.len()).into_bytes();
    r.extend(b);
    r
}

fn chunked(_: &Url) -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for (i, c) in body().chunks(7777).enumerate() {
        if i == 1 {
            r.extend(format!("{:X};ext=1\r\n", c.len()).into_bytes());
        } else {
            r.extend(format!("{:x}\r\n", c.len()).into_bytes());
        }
        r.extend(c);
        r.extend(b"\r\n");
    }
    r.extend(b"0\r\nTrailer: x\r\n\r\n");
    r
}

fn until_close(_: &Url) -> Vec<u8> {
    let mut r = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
    r.extend(body());
    r
}

fn redirects(url: &Url) -> Vec<u8> {
    match url.path.as_str() {
        "/a" => b"HTTP/1.1 301 Moved\r\nLocation: /b\r\nContent-Length: 3\r\n\r\nxyz".to_vec(),
        "/b" => b"HTTP/1.1 302 Found\r\nLocation: c?q=1\r\n\r\n".to_vec(),
        "/c?q=1" => b"HTTP/1.1 307 Temp\r\nLocation: http://other:81/final\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/loop" => b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => with_length(url),
    }
}

fn fetch_with(
    answer: fn(&Url) -> Vec<u8>,
    url: &str,
    piece: usize,
) -> (Result<keel_net::http::Fetched, FetchError>, Collect, Vec<String>) {
    let mut server = Server { answer, piece, visited: Vec::new() };
    let mut sink = Collect::default();
    let r = fetch(url, &mut server, &mut sink);
    (r, sink, server.visited)
}

#[test]
fn bodies_of_every_framing_arrive_whole_in_any_pieces() {
    type Answer = fn(&Url) -> Vec<u8>;
    let framings: [(Answer, bool); 3] = [(with_length, false), (chunked, false), (until_close, true)];
    for (answer, slow) in framings {
        for piece in [1, 2, 3, 100, 1460, 16384] {
            // A close-delimited body in 1-byte reads is just slow, not different.
            if slow && piece < 50 {
                continue;
            }
            let (r, sink, _) = fetch_with(answer, "http://h/x", piece);
            let done = r.unwrap();
            assert_eq!(sink.body, body(), "piece {piece}");
            assert_eq!(done.bytes, body().len() as u64);
            assert_eq!(sink.began.unwrap().0, 200);
        }
    }
    let (_, sink, _) = fetch_with(with_length, "http://h/x", 999);
    assert_eq!(sink.began, Some((200, Some(100_000))));
}

#[test]
fn redirects_are_followed_and_bounded() {
    let (r, sink, visited) = fetch_with(redirects, "http://h/a", 5);
    let done = r.unwrap();
    assert_eq!(visited, ["h:80/a", "h:80/b", "h:80/c?q=1", "other:81/final"]);
    assert_eq!((done.redirects, done.url.host.as_str()), (3, "other"));
    assert_eq!(sink.body, body());
    let (r, sink, _) = fetch_with(redirects, "http://h/loop", 64);
    assert_eq!(r.unwrap_err(), FetchError::TooManyRedirects);
    assert!(sink.began.is_none() && sink.body.is_empty());
}

#[test]
fn failures_are_clear() {
    fn not_found(_: &Url) -> Vec<u8> {
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec()
    }
    fn early_close(_: &Url) -> Vec<u8> {
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this".to_vec()
    }
    fn chunk_cut(_: &Url) -> Vec<u8> {
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc".to_vec()
    }
    fn garbage(_: &Url) -> Vec<u8> {
        b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()
    }
    fn silent(_: &Url) -> Vec<u8> {
        Vec::new()
    }
    fn bad_chunk(_: &Url) -> Vec<u8> {
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()
    }
    assert_eq!(fetch_with(not_found, "http://h/x", 7).0.unwrap_err(), FetchError::Status(404, "Not Found".into()));
    assert_eq!(
        fetch_with(early_close, "http://h/x", 7).0.unwrap_err(),
        FetchError::Truncated { got: 9, expected: Some(1000) }
    );
    assert!(matches!(fetch_with(chunk_cut, "http://h/x", 7).0.unwrap_err(), FetchError::Truncated { got: 3, .. }));
    assert!(matches!(fetch_with(garbage, "http://h/x", 7).0.unwrap_err(), FetchError::Malformed(_)));
    assert!(matches!(fetch_with(silent, "http://h/x", 7).0.unwrap_err(), FetchError::Malformed(_)));
    assert!(matches!(fetch_with(bad_chunk, "http://h/x", 7).0.unwrap_err(), FetchError::Malformed(_)));
    assert_eq!(
        fetch_with(with_length, "http://refused/", 7).0.unwrap_err(),
        FetchError::Net("connection refused".into())
    );
    assert!(matches!(fetch_with(with_length, "gopher://h/", 7).0.unwrap_err(), FetchError::Url(_)));
    // The sink refusing (a full disk) stops the transfer with its reason.
    let mut server = Server { answer: with_length, piece: 1000, visited: Vec::new() };
    let mut sink = Collect { limit: Some(5000), ..Collect::default() };
    assert_eq!(fetch("http://h/x", &mut server, &mut sink).unwrap_err(), FetchError::Sink("no space left".into()));
}

#[test]
fn a_transport_error_mid_body_is_reported() {
    struct Resetting;
    impl Connector for Resetting {
        fn connect(&mut self, _: &Url) -> Result<Box<dyn Connection + '_>, FetchError> {
            let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc".to_vec();
            Ok(Box::new(Scripted {
                pieces: VecDeque::from([head]),
                fail: Some(FetchError::Net("connection reset by peer".into())),
            }))
        }
    }
    let mut sink = Collect::default();
    assert_eq!(
        fetch("http://h/", &mut Resetting, &mut sink).unwrap_err(),
        FetchError::Net("connection reset by peer".into())
    );
    assert_eq!(sink.body, b"abc");
}
