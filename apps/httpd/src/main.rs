//! httpd: serves the files of a directory over HTTP/1.1, run as `wasm --tcplisten ADDR:PORT
//! --dir DIR::/srv httpd.wasm`: the listening socket is the first preopened descriptor that
//! is a socket (Keel numbers sockets after the directories), the files come from the
//! preopened `/srv` (or the directory given as the first argument). One connection at a time,
//! GET and HEAD, `Connection: close`.
//!
//! Keel: `wasm --tcplisten 0.0.0.0:8080 --dir /extra_files::/srv /extra_files/wasm/httpd.wasm`,
//! then from the host (with `cargo xtask run --forward 8080:8080`): `curl 127.0.0.1:8080/`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::path::{Component, Path, PathBuf};

/// Longest request head read.
const MAX_HEAD: usize = 16 * 1024;

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/srv".into()));
    let Some((fd, listener)) = find_listener() else {
        eprintln!("httpd: no listening socket (run with --tcplisten ADDR:PORT)");
        std::process::exit(2);
    };
    eprintln!("httpd: serving {} on fd {fd}", root.display());
    let mut served: u64 = 0;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = handle(stream, &root) {
                    eprintln!("httpd: {e}");
                }
                served += 1;
                if served % 100 == 0 {
                    eprintln!("httpd: {served} requests");
                }
            }
            Err(e) => {
                eprintln!("httpd: accept: {e}");
                return;
            }
        }
    }
}

/// The first preopened descriptor that is a listening socket: a non-blocking accept on it
/// answers "would block" (a directory answers "not a socket").
fn find_listener() -> Option<(i32, TcpListener)> {
    for fd in 3..64 {
        // SAFETY: fds 3.. are the runtime's preopens; each is wrapped only to probe it, and
        // given back (forgotten, not closed) unless it is the listener, which this program
        // then owns alone.
        let l = unsafe { TcpListener::from_raw_fd(fd) };
        let probe = l.set_nonblocking(true).and_then(|_| l.accept().map(|_| ()));
        // "Would block", or a client already waiting (accepted and dropped: it will retry).
        let listening = match &probe {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        };
        if listening && l.set_nonblocking(false).is_ok() {
            return Some((fd, l));
        }
        std::mem::forget(l);
    }
    None
}

/// Reads the request head: (method, path).
fn read_head(s: &mut TcpStream) -> std::io::Result<Option<(String, String)>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(m), Some(p)) => Ok(Some((m.to_string(), p.to_string()))),
        _ => Ok(None),
    }
}

/// The file a request path names, confined to `root` (no `..`).
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(path)?;
    let mut out = root.to_path_buf();
    for c in Path::new(&decoded).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn respond(s: &mut TcpStream, status: &str, kind: &str, body: &[u8], head_only: bool) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nServer: keel-httpd\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    if !head_only {
        s.write_all(body)?;
    }
    s.flush()
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt" | "md" | "c" | "rs") => "text/plain; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn handle(mut s: TcpStream, root: &Path) -> std::io::Result<()> {
    let Some((method, path)) = read_head(&mut s)? else { return Ok(()) };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut s, "405 Method Not Allowed", "text/plain", b"only GET and HEAD\n", false);
    }
    let Some(file) = resolve(root, &path) else {
        return respond(&mut s, "400 Bad Request", "text/plain", b"bad path\n", head_only);
    };
    if file.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(&file)?
            .filter_map(|e| e.ok())
            .map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() {
                    format!("{n}/")
                } else {
                    n
                }
            })
            .collect();
        names.sort();
        let base = if path.ends_with('/') { path.clone() } else { format!("{path}/") };
        let mut page = format!("<!doctype html><title>{path}</title><h1>{path}</h1><ul>\n");
        for n in names {
            page.push_str(&format!("<li><a href=\"{base}{n}\">{n}</a>\n"));
        }
        page.push_str("</ul>\n");
        return respond(&mut s, "200 OK", "text/html; charset=utf-8", page.as_bytes(), head_only);
    }
    match std::fs::read(&file) {
        Ok(body) => respond(&mut s, "200 OK", content_type(&file), &body, head_only),
        Err(_) => respond(&mut s, "404 Not Found", "text/plain", b"not found\n", head_only),
    }
}
