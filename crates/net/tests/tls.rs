//! https:// against a rustls server on the host's loopback with the test CA (tests/tls):
//! a body arrives intact; a server the client cannot verify is refused, with the reason.
#![cfg(feature = "tls")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use keel_net::http::{fetch, Connection, Connector, FetchError, Sink};
use keel_net::tls::{client_config, TlsStream, Trust};
use keel_net::url::Url;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../tests/tls/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn body() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 241) as u8).collect()
}

/// Serves one HTTPS request with the test server certificate; returns the port.
fn server() -> u16 {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&file("server.pem")).map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_slice(&file("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls_rustcrypto::provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            if req.is_empty() {
                continue;
            }
            let b = body();
            let _ = tls.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes());
            let _ = tls.write_all(&b);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

struct Tcp(TcpStream);

impl Connection for Tcp {
    fn send_all(&mut self, data: &[u8]) -> Result<(), FetchError> {
        self.0.write_all(data).map_err(|e| FetchError::Net(e.to_string()))
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        self.0.read(buf).map_err(|e| FetchError::Net(e.to_string()))
    }
}

struct Https {
    port: u16,
    trust: Vec<u8>,
    webpki: bool,
}

impl Connector for Https {
    fn connect(&mut self, url: &Url) -> Result<Box<dyn Connection + '_>, FetchError> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| FetchError::Net(e.to_string()))?;
        let trust = if self.webpki { Trust::WebPki } else { Trust::Pem(&self.trust) };
        let config = client_config(trust, || 1_800_000_000).map_err(FetchError::Net)?;
        Ok(Box::new(TlsStream::connect(Box::new(Tcp(tcp)), config, &url.host)?))
    }
}

#[derive(Default)]
struct Collect(Vec<u8>);

impl Sink for Collect {
    fn begin(&mut self, _: u16, _: Option<u64>) -> Result<(), FetchError> {
        Ok(())
    }
    fn write(&mut self, data: &[u8]) -> Result<(), FetchError> {
        self.0.extend_from_slice(data);
        Ok(())
    }
}

#[test]
fn a_body_arrives_over_tls_from_a_verified_server() {
    let port = server();
    let mut https = Https { port, trust: file("keel-ca.pem"), webpki: false };
    let mut sink = Collect::default();
    let done = fetch(&format!("https://host:{port}/x"), &mut https, &mut sink).unwrap();
    assert_eq!(done.bytes, body().len() as u64);
    assert_eq!(sink.0, body());
    // By the address the certificate names too.
    let mut sink = Collect::default();
    fetch(&format!("https://10.0.2.100:{port}/x"), &mut https, &mut sink).unwrap();
    assert_eq!(sink.0, body());
}

#[test]
fn servers_that_cannot_be_verified_are_refused() {
    let port = server();
    let cases = [
        (Https { port, trust: file("other-ca.pem"), webpki: false }, format!("https://host:{port}/x")),
        (Https { port, trust: Vec::new(), webpki: true }, format!("https://host:{port}/x")),
        (Https { port, trust: file("keel-ca.pem"), webpki: false }, format!("https://wrong.example:{port}/x")),
    ];
    for (mut https, url) in cases {
        let err = fetch(&url, &mut https, &mut Collect::default()).unwrap_err();
        match err {
            FetchError::Net(msg) => assert!(msg.contains("certificate verification failed"), "{url}: {msg}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    // A file that is not a certificate is refused as such.
    assert!(client_config(Trust::Pem(b"hello"), || 0).is_err());
}
