//! The network: Keel fetches from a test server on the host's loopback (reached through
//! `--allow-host`, never any other address), pings QEMU's gateway, and reports failures
//! clearly without leaving partial files.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::harness::{boot_with, check, contains, noise, sha256_hex, shutdown, STEP};
use crate::build::Image;
use crate::qemu::{Options, Vm};

/// What the test server answers for a path.
#[derive(Clone)]
pub(crate) enum Answer {
    /// 200 with a Content-Length body.
    Body(Vec<u8>),
    /// 200 with a chunked body.
    Chunked(Vec<u8>),
    /// A redirect to another path.
    Redirect(&'static str, String),
    /// 404.
    NotFound,
    /// Announces `len` bytes, sends `sent` of them, closes.
    EarlyClose { len: usize, sent: usize },
    /// Announces and sends `len` zero bytes, slowly if `pause_ms` (per 64 KiB).
    Stream { len: usize, pause_ms: u64 },
    /// Accepts and never answers.
    Silent,
}

/// An HTTP server on 127.0.0.1, one thread per connection, until dropped.
pub(crate) struct Server {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn respond(mut s: impl Read + Write, route: &(dyn Fn(&str) -> Answer + Send + Sync)) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let head = |s: &mut dyn Write, status: &str, extra: &str| {
        let _ = s.write_all(format!("HTTP/1.1 {status}\r\n{extra}Connection: close\r\n\r\n").as_bytes());
    };
    match route(&path) {
        Answer::Body(b) => {
            head(&mut s, "200 OK", &format!("Content-Length: {}\r\n", b.len()));
            let _ = s.write_all(&b);
        }
        Answer::Chunked(b) => {
            head(&mut s, "200 OK", "Transfer-Encoding: chunked\r\n");
            for c in b.chunks(10_000) {
                let _ = s.write_all(format!("{:x}\r\n", c.len()).as_bytes());
                let _ = s.write_all(c);
                let _ = s.write_all(b"\r\n");
            }
            let _ = s.write_all(b"0\r\n\r\n");
        }
        Answer::Redirect(code, to) => head(&mut s, code, &format!("Location: {to}\r\nContent-Length: 0\r\n")),
        Answer::NotFound => {
            head(&mut s, "404 Not Found", "Content-Length: 9\r\n");
            let _ = s.write_all(b"not found");
        }
        Answer::EarlyClose { len, sent } => {
            head(&mut s, "200 OK", &format!("Content-Length: {len}\r\n"));
            let _ = s.write_all(&vec![b'x'; sent]);
        }
        Answer::Stream { len, pause_ms } => {
            head(&mut s, "200 OK", &format!("Content-Length: {len}\r\n"));
            let block = vec![0u8; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(block.len());
                if s.write_all(&block[..n]).is_err() {
                    return;
                }
                left -= n;
                if pause_ms > 0 {
                    std::thread::sleep(Duration::from_millis(pause_ms));
                }
            }
        }
        Answer::Silent => std::thread::sleep(Duration::from_secs(20)),
    }
    let _ = s.flush();
}

/// Starts a server answering with `route`.
pub(crate) fn serve(route: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Result<Server, String> {
    serve_with(route, None)
}

/// The test server's TLS configuration: tests/tls/server.pem, signed by tests/tls/keel-ca.pem.
fn tls_config() -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = crate::build::root().join("tests/tls");
    let read = |n: &str| std::fs::read(dir.join(n)).map_err(|e| format!("tests/tls/{n}: {e}"));
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read("server.pem")?).collect::<Result<_, _>>().map_err(|e| format!("{e:?}"))?;
    let key = PrivateKeyDer::from_pem_slice(&read("server.key")?).map_err(|e| format!("{e:?}"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls_rustcrypto::provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

/// Starts an HTTPS server (the test certificate) answering with `route`.
pub(crate) fn serve_tls(route: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Result<Server, String> {
    serve_with(route, Some(tls_config()?))
}

fn serve_with(
    route: impl Fn(&str) -> Answer + Send + Sync + 'static,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Server, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let route: Arc<dyn Fn(&str) -> Answer + Send + Sync> = Arc::new(route);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop2.load(Ordering::SeqCst) {
                return;
            }
            let Ok(conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
            let route = route.clone();
            let tls = tls.clone();
            std::thread::spawn(move || match tls {
                None => respond(conn, &*route),
                Some(config) => {
                    let Ok(session) = rustls::ServerConnection::new(config) else { return };
                    let mut stream = rustls::StreamOwned::new(session, conn);
                    respond(&mut stream, &*route);
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                }
            });
        }
    });
    Ok(Server { port, stop })
}

/// Boots Keel allowed to reach `ports` on the host's loopback, and waits for DHCP.
pub(crate) fn boot_net(image: &Image, ports: &[u16], mem: &str) -> Result<Vm, String> {
    let mut opts = Options { mem: mem.into(), ..Options::default() };
    opts.net.allow_host = ports.to_vec();
    let mut vm = boot_with(image, &opts)?;
    for _ in 0..50 {
        if vm.run("ip", STEP)?.contains("inet 10.0.2.15/24 (DHCP)") {
            return Ok(vm);
        }
        vm.run("sleep 0.1", STEP)?;
    }
    Err(format!("no DHCP address after 5 s:\n{}", vm.run("ip", STEP)?))
}

/// Waits (up to 5 s: closing connections linger a moment) until `ip` counts `n` open sockets.
pub(crate) fn sockets_back_to(vm: &mut Vm, n: usize) -> Result<(), String> {
    let want = format!("sockets: {n} open");
    let mut ip = String::new();
    for _ in 0..50 {
        ip = vm.run("ip", STEP)?;
        if ip.contains(&want) {
            return Ok(());
        }
        vm.run("sleep 0.1", STEP)?;
    }
    contains(&ip, &want)
}

const SIZES: [usize; 6] = [0, 1, 1460, 65_539, 1 << 20, 5 << 20];

pub(super) fn fetch_files_and_run_one(image: &Image) -> Result<(), String> {
    let hello = std::fs::read(crate::build::out_dir().join("wasm/hello.wasm")).map_err(|e| e.to_string())?;
    let server = serve(move |path| {
        if let Some(i) = path.strip_prefix("/file/").and_then(|i| i.parse::<usize>().ok()) {
            return Answer::Body(noise(SIZES[i % SIZES.len()], i as u64 + 5));
        }
        match path {
            "/chunked" => Answer::Chunked(noise(1 << 20, 99)),
            "/hello.wasm" => Answer::Body(hello.clone()),
            "/moved" => Answer::Redirect("301 Moved Permanently", "/again".into()),
            "/again" => Answer::Redirect("302 Found", "file/3".into()),
            _ => Answer::NotFound,
        }
    })?;
    let port = server.port;
    let mut vm = boot_net(image, &[port], "512M")?;
    let ip = vm.run("ip", STEP)?;
    contains(&ip, "interrupt")?;
    let ping = vm.run("ping -c 2 10.0.2.2", STEP)?;
    contains(&ping, "2 packets transmitted, 2 received")?;
    for (i, n) in SIZES.iter().enumerate() {
        let out = vm.run(&format!("fetch -q http://host:{port}/file/{i} -o /tmp/f{i}; sha256sum /tmp/f{i}"), STEP)?;
        let want = sha256_hex(&noise(*n, i as u64 + 5));
        check(out == format!("{want}  /tmp/f{i}\n"), &format!("file {i} ({n} bytes) arrives intact"), &out)?;
    }
    let out = vm.run(&format!("fetch -q http://host:{port}/chunked -o /tmp/c; sha256sum /tmp/c"), STEP)?;
    check(out.starts_with(&sha256_hex(&noise(1 << 20, 99))), "chunked body intact", &out)?;
    let out = vm.run(&format!("cd /tmp; fetch http://host:{port}/moved -o m; sha256sum m; cd /"), STEP)?;
    contains(&out, &sha256_hex(&noise(SIZES[3], 8)))?;
    let out = vm.run(
        &format!("fetch http://{}:{port}/hello.wasm -o /tmp/tool.wasm && wasm /tmp/tool.wasm", "10.0.2.100"),
        STEP,
    )?;
    contains(&out, "Hello")?;
    // Nothing half-written was left behind.
    let out = vm.run("ls -a /tmp", STEP)?;
    check(!out.contains(".part"), "no temporary files", &out)?;
    // Every socket was closed.
    sockets_back_to(&mut vm, 0)?;
    shutdown(vm)
}

pub(super) fn fetch_failures_are_clear(image: &Image) -> Result<(), String> {
    let server = serve(|path| match path {
        "/early" => Answer::EarlyClose { len: 100_000, sent: 1000 },
        "/silent" => Answer::Silent,
        "/huge" => Answer::Stream { len: 200 << 20, pause_ms: 0 },
        "/loop" => Answer::Redirect("302 Found", "/loop".into()),
        _ => Answer::NotFound,
    })?;
    // A port allowed but with nothing listening on the host.
    let closed = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let closed_port = closed.local_addr().map_err(|e| e.to_string())?.port();
    drop(closed);
    let port = server.port;
    // 128 MiB: /tmp holds at most 64 MiB, less than the huge body.
    let mut vm = boot_net(image, &[port, closed_port], "128M")?;
    let cases: [(String, &str); 8] = [
        (format!("fetch http://host:{port}/missing"), "the server answered 404 Not Found"),
        (format!("fetch http://host:{port}/early"), "closed the connection early (1000 of 100000 bytes)"),
        (format!("fetch -t 1 http://host:{port}/silent"), "timed out (nothing from the server for 1 s)"),
        (format!("fetch http://host:{port}/loop"), "more than 10 redirects"),
        // QEMU accepts for the host, then the relay finds nothing listening and hangs up (a
        // reset or an empty answer, as QEMU happens to close it).
        (
            format!("fetch http://host:{closed_port}/x"),
            "|connection reset by peer|closed the connection without answering",
        ),
        ("fetch http://192.0.2.1/x".into(), "no route to host"),
        ("fetch http://nowhere.invalid/x".into(), "cannot resolve 'nowhere.invalid'"),
        (format!("fetch http://host:{port}/huge"), "no space left"),
    ];
    for (cmd, want) in &cases {
        let out = vm.run(&format!("cd /tmp; {cmd} -o out.bin; echo status $?; cd /"), Duration::from_secs(60))?;
        match want.strip_prefix('|') {
            Some(alternatives) => {
                check(alternatives.split('|').any(|w| out.contains(w)), &format!("one of {alternatives}"), &out)?
            }
            None => contains(&out, want)?,
        }
        contains(&out, "status 1")?;
        let ls = vm.run("ls -a /tmp", STEP)?;
        check(!ls.contains("out.bin"), &format!("no file left after '{cmd}'"), &ls)?;
    }
    let out = vm.run("fetch ftp://host/x; echo status $?", STEP)?;
    contains(&out, "unsupported scheme 'ftp'")?;
    contains(&out, "status 2")?;
    sockets_back_to(&mut vm, 0)?;
    shutdown(vm)
}

pub(super) fn https_with_a_test_ca(image: &Image) -> Result<(), String> {
    let tls_dir = crate::build::root().join("tests/tls");
    let ca = std::fs::read(tls_dir.join("keel-ca.pem")).map_err(|e| e.to_string())?;
    let other = std::fs::read(tls_dir.join("other-ca.pem")).map_err(|e| e.to_string())?;
    // The CAs come over plain HTTP; the file over HTTPS.
    let plain = serve(move |path| match path {
        "/keel-ca.pem" => Answer::Body(ca.clone()),
        "/other-ca.pem" => Answer::Body(other.clone()),
        _ => Answer::NotFound,
    })?;
    let secure = serve_tls(|path| match path {
        "/file" => Answer::Body(noise(300_000, 77)),
        "/moved" => Answer::Redirect("302 Found", "/file".into()),
        _ => Answer::NotFound,
    })?;
    let (p, s) = (plain.port, secure.port);
    let mut vm = boot_net(image, &[p, s], "512M")?;
    vm.run(&format!("fetch -q http://host:{p}/keel-ca.pem -o /tmp/ca.pem; fetch -q http://host:{p}/other-ca.pem -o /tmp/other.pem"), STEP)?;
    let want = sha256_hex(&noise(300_000, 77));
    for url in [format!("https://host:{s}/file"), format!("https://10.0.2.100:{s}/moved")] {
        let out = vm.run(
            &format!("fetch -q --ca /tmp/ca.pem {url} -o /tmp/f; sha256sum /tmp/f; rm /tmp/f"),
            Duration::from_secs(60),
        )?;
        check(out.contains(&want), &format!("{url}: the body arrives intact over TLS"), &out)?;
    }
    // A server Keel cannot verify: the bundled roots do not know the test CA; another CA; a
    // name the certificate does not carry.
    let cases = [
        format!("fetch https://host:{s}/file -o /tmp/f"),
        format!("fetch --ca /tmp/other.pem https://host:{s}/file -o /tmp/f"),
        format!("fetch --ca /extra_files/welcome.txt https://host:{s}/file -o /tmp/f"),
    ];
    for cmd in &cases {
        let out = vm.run(&format!("{cmd}; echo status $?"), Duration::from_secs(60))?;
        check(
            out.contains("certificate verification failed") || out.contains("--ca: "),
            &format!("'{cmd}' refused with the reason"),
            &out,
        )?;
        contains(&out, "status 1")?;
        let ls = vm.run("ls /tmp", STEP)?;
        check(!ls.contains("f\n") && !ls.contains(".part"), "no file left", &ls)?;
    }
    sockets_back_to(&mut vm, 0)?;
    shutdown(vm)
}

pub(super) fn ctrl_c_stops_a_download(image: &Image) -> Result<(), String> {
    let server = serve(|_| Answer::Stream { len: 50 << 20, pause_ms: 100 })?;
    let port = server.port;
    let mut vm = boot_net(image, &[port], "512M")?;
    vm.send_line(&format!("fetch http://host:{port}/slow -o /tmp/slow.bin"))?;
    // The progress bar shows up for a long download.
    vm.wait_for("%", Duration::from_secs(20))?;
    vm.send(b"\x03")?;
    let out = vm.wait_for(crate::qemu::PROMPT, STEP)?;
    contains(&out, "interrupted")?;
    let out = vm.run("echo status $?", STEP)?;
    contains(&out, "status 130")?;
    let ls = vm.run("ls -a /tmp", STEP)?;
    check(!ls.contains("slow"), "no file left after Ctrl-C", &ls)?;
    sockets_back_to(&mut vm, 0)?;
    shutdown(vm)
}

/// `--no-net`: no card, and the commands say so.
pub(super) fn without_a_card(image: &Image) -> Result<(), String> {
    let mut opts = Options::default();
    opts.net.enabled = false;
    let mut vm = boot_with(image, &opts)?;
    let out = vm.run("ip; echo status $?", STEP)?;
    contains(&out, "no network card")?;
    contains(&out, "status 1")?;
    let out = vm.run("fetch http://host/x -o /tmp/x; echo status $?", STEP)?;
    contains(&out, "no network card")?;
    shutdown(vm)
}

/// A free port on the host's loopback (for `--forward`).
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// One GET to 127.0.0.1:`port`: (status line, body).
pub(crate) fn get(port: u16, path: &str) -> Result<(String, Vec<u8>), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: keel\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).map_err(|e| format!("read: {e}"))?;
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").ok_or(format!("no head in {} bytes", all.len()))?;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no Content-Length")?;
    let body = all[end + 4..].to_vec();
    if body.len() != len {
        return Err(format!("{} of {len} bytes", body.len()));
    }
    Ok((head.lines().next().unwrap_or("").to_string(), body))
}

/// Starts the WASM server in Keel as a background job, reachable at 127.0.0.1:(returned port).
pub(crate) fn start_server(image: &Image) -> Result<(Vm, u16), String> {
    let port = free_port()?;
    let mut opts = Options::default();
    opts.net.forwards = vec![(port, 8080)];
    let mut vm = boot_with(image, &opts)?;
    for _ in 0..50 {
        if vm.run("ip", STEP)?.contains("(DHCP)") {
            break;
        }
        vm.run("sleep 0.1", STEP)?;
    }
    let out = vm.run("wasm --tcplisten 0.0.0.0:8080 --dir /extra_files::/srv /extra_files/wasm/httpd.wasm &", STEP)?;
    contains(&out, "[1] ")?;
    // Ready once it answers.
    for _ in 0..100 {
        if get(port, "/welcome.txt").is_ok() {
            return Ok((vm, port));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("the server did not answer:\n{}", vm.output()))
}

pub(super) fn wasm_server_under_load(image: &Image) -> Result<(), String> {
    let extra = crate::build::root().join("extra_files");
    let welcome = std::fs::read(extra.join("welcome.txt")).map_err(|e| e.to_string())?;
    let hello = std::fs::read(crate::build::out_dir().join("wasm/hello.wasm")).map_err(|e| e.to_string())?;
    let (mut vm, port) = start_server(image)?;
    let sockets_before = vm.run("ip", STEP)?;
    contains(&sockets_before, "sockets: 1 open")?;
    let heap_before = super::harness::heap_used(&vm.run("mem", STEP)?);
    // 1000 requests, 16 connections at a time, two files of different sizes.
    let (welcome, hello) = (Arc::new(welcome), Arc::new(hello));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (welcome, hello, failures) = (welcome.clone(), hello.clone(), failures.clone());
            std::thread::spawn(move || {
                for i in 0..1000 / 16 + usize::from(w < 1000 % 16) {
                    let (path, want) =
                        if (w + i) % 2 == 0 { ("/welcome.txt", &welcome) } else { ("/wasm/hello.wasm", &hello) };
                    match get(port, path) {
                        Ok((status, body)) if status.contains("200") && body == **want => {}
                        Ok((status, body)) => {
                            failures.lock().unwrap().push(format!("{path}: {status}, {} bytes", body.len()))
                        }
                        Err(e) => failures.lock().unwrap().push(format!("{path}: {e}")),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed();
    let failures = failures.lock().unwrap().clone();
    check(failures.is_empty(), &format!("1000 requests, none lost ({} failed)", failures.len()), &failures.join("\n"))?;
    println!("      (1000 requests, 16 at a time, in {:.1} s)", elapsed.as_secs_f64());
    // A 404, and a path trying to leave the served directory.
    let (status, _) = get(port, "/nothing-here")?;
    check(status.contains("404"), "404 for a missing file", &status)?;
    let (status, _) = get(port, "/../etc/passwd")?;
    check(status.contains("400"), "no way out of /srv", &status)?;
    // Sockets and memory back to where they were: the listener alone.
    sockets_back_to(&mut vm, 1)?;
    // Keel reaches its own server at 127.0.0.1, over loopback.
    let out = vm.run("fetch -q -o - http://127.0.0.1:8080/welcome.txt", STEP)?;
    check(out.as_bytes() == welcome.as_slice(), "Keel fetches from its own server over 127.0.0.1", &out)?;
    sockets_back_to(&mut vm, 1)?;
    super::harness::check_heap_back(&mut vm, heap_before, 256 * 1024)?;
    // Killed mid-request: a client has sent half a request when the server goes.
    let mut half = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    half.write_all(b"GET /welcome.txt HT").map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(300));
    vm.run("kill %1", STEP)?;
    let out = vm.run("wait; echo done", Duration::from_secs(30))?;
    contains(&out, "done")?;
    half.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut rest = Vec::new();
    let _ = half.read_to_end(&mut rest);
    check(
        rest.is_empty(),
        "the half-served client got nothing, and its connection ended",
        &String::from_utf8_lossy(&rest),
    )?;
    sockets_back_to(&mut vm, 0)?;
    check(get(port, "/welcome.txt").is_err(), "nothing answers once the server is gone", "")?;
    shutdown(vm)
}
