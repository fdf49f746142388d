//! `https://` for `fetch`: rustls in `no_std` (its unbuffered API) with the pure-Rust
//! RustCrypto provider, verifying the server against Mozilla's roots (`webpki-roots`) or the
//! certificates a user names (`fetch --ca FILE`). [`TlsStream`] wraps any byte [`Connection`]
//! and is one itself, so the HTTP client does not know it is there.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::unbuffered::{AppDataRecord, ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, RootCertStore};

use crate::http::{Connection, FetchError};

/// The wall clock rustls checks certificates against (seconds since the Unix epoch).
#[derive(Debug)]
struct Clock(fn() -> u64);

impl rustls::time_provider::TimeProvider for Clock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(core::time::Duration::from_secs((self.0)())))
    }
}

/// Which certificates to trust.
pub enum Trust<'a> {
    /// Mozilla's root program, as `webpki-roots` carries it.
    WebPki,
    /// Only the CA certificates in this PEM text.
    Pem(&'a [u8]),
}

/// A client configuration: TLS 1.2 and 1.3, the RustCrypto provider, `trust`, and the clock.
pub fn client_config(trust: Trust<'_>, unix_seconds: fn() -> u64) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match trust {
        Trust::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Trust::Pem(pem) => {
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("not a PEM certificate file ({e:?})"))?;
                roots.add(cert).map_err(|e| format!("unusable CA certificate: {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err(String::from("no certificate in the file"));
            }
        }
    }
    let provider = Arc::new(rustls_rustcrypto::provider());
    let config = ClientConfig::builder_with_details(provider, Arc::new(Clock(unix_seconds)))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn tls_error(e: rustls::Error) -> FetchError {
    match e {
        rustls::Error::InvalidCertificate(why) => {
            FetchError::Net(format!("TLS: certificate verification failed: {why:?}"))
        }
        other => FetchError::Net(format!("TLS: {other}")),
    }
}

/// What a step of the TLS machine is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    Handshake,
    Send,
    Recv,
}

/// A TLS client session over a byte stream.
pub struct TlsStream<'c> {
    inner: Box<dyn Connection + 'c>,
    conn: UnbufferedClientConnection,
    incoming: Vec<u8>,
    used: usize,
    plain: VecDeque<u8>,
    out: Vec<u8>,
    closed: bool,
}

impl<'c> TlsStream<'c> {
    /// Runs the handshake with `host` (a name or an IP address, checked against the
    /// certificate) over `inner`.
    pub fn connect(inner: Box<dyn Connection + 'c>, config: Arc<ClientConfig>, host: &str) -> Result<Self, FetchError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| FetchError::Net(format!("TLS: '{host}' is not a valid server name")))?;
        let conn = UnbufferedClientConnection::new(config, name).map_err(tls_error)?;
        let mut s = TlsStream {
            inner,
            conn,
            incoming: vec![0; 32 * 1024],
            used: 0,
            plain: VecDeque::new(),
            out: vec![0; 32 * 1024],
            closed: false,
        };
        s.drive(Goal::Handshake, &[])?;
        Ok(s)
    }

    /// Advances the session until `goal` is met: the handshake done, `data` sent, or some
    /// plaintext (or the end) received. Returns how many bytes of `data` were sent.
    fn drive(&mut self, goal: Goal, data: &[u8]) -> Result<usize, FetchError> {
        loop {
            let mut need_input = false;
            let mut met = false;
            let mut sent = 0;
            let mut to_transmit = 0;
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.incoming[..self.used]);
            match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut r) => {
                    while let Some(rec) = r.next_record() {
                        let AppDataRecord { discard: d, payload } = rec.map_err(tls_error)?;
                        discard += d;
                        self.plain.extend(payload.iter().copied());
                    }
                }
                ConnectionState::EncodeTlsData(mut e) => loop {
                    match e.encode(&mut self.out) {
                        Ok(n) => {
                            to_transmit = n;
                            break;
                        }
                        Err(EncodeError::InsufficientSize(s)) => self.out.resize(s.required_size, 0),
                        Err(EncodeError::AlreadyEncoded) => break,
                    }
                },
                ConnectionState::TransmitTlsData(t) => {
                    // Everything encoded so far has been sent (below, right after encoding).
                    t.done();
                }
                ConnectionState::BlockedHandshake => need_input = true,
                ConnectionState::WriteTraffic(mut w) => match goal {
                    Goal::Handshake => met = true,
                    Goal::Send => {
                        let chunk = &data[..data.len().min(16 * 1024)];
                        loop {
                            match w.encrypt(chunk, &mut self.out) {
                                Ok(n) => {
                                    to_transmit = n;
                                    sent = chunk.len();
                                    met = true;
                                    break;
                                }
                                Err(EncryptError::InsufficientSize(s)) => self.out.resize(s.required_size, 0),
                                Err(EncryptError::EncryptExhausted) => {
                                    return Err(FetchError::Net(String::from("TLS: keys exhausted")))
                                }
                            }
                        }
                    }
                    Goal::Recv => need_input = self.plain.is_empty(),
                },
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.closed = true;
                    met = true;
                }
                _ => need_input = true,
            }
            if discard > 0 {
                self.incoming.copy_within(discard..self.used, 0);
                self.used -= discard;
            }
            if to_transmit > 0 {
                self.inner.send_all(&self.out[..to_transmit])?;
            }
            if met || (goal == Goal::Recv && !self.plain.is_empty()) {
                return Ok(sent);
            }
            if need_input {
                if self.used == self.incoming.len() {
                    self.incoming.resize(self.incoming.len() * 2, 0);
                }
                let n = self.inner.recv(&mut self.incoming[self.used..])?;
                if n == 0 {
                    // The server hung up without close_notify.
                    if goal == Goal::Recv {
                        self.closed = true;
                        return Ok(0);
                    }
                    return Err(FetchError::Net(String::from(
                        "TLS: the server closed the connection during the handshake",
                    )));
                }
                self.used += n;
            }
        }
    }
}

impl Connection for TlsStream<'_> {
    fn send_all(&mut self, data: &[u8]) -> Result<(), FetchError> {
        let mut done = 0;
        while done < data.len() {
            done += self.drive(Goal::Send, &data[done..])?;
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        if self.plain.is_empty() && !self.closed {
            self.drive(Goal::Recv, &[])?;
        }
        let n = buf.len().min(self.plain.len());
        for (dst, src) in buf.iter_mut().zip(self.plain.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}
