//! WASI sockets over a scripted network: a listener preopened at fd 3 (the first after the
//! directories, here none), connections accepted, read and written with sock_* and fd_*, blocking calls
//! suspending until the network is ready, non-blocking ones answering EAGAIN, poll_oneoff on
//! sockets, and every socket closed when the program ends.
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use keel_vfs::{MemFs, Vfs};
use keel_wasi::errno::*;
use keel_wasi::types::{eventtype, fdflags, filetype};
use keel_wasi::{Abort, Config, Sockets, System, WasiCtx};

struct Sys;

impl System for Sys {
    fn realtime_ns(&self) -> u64 {
        0
    }
    fn monotonic_ns(&self) -> u64 {
        0
    }
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(1);
    }
}

/// The network as the test scripts it.
#[derive(Default)]
struct World {
    /// Connections waiting on listener 100.
    incoming: VecDeque<u64>,
    /// Bytes each connection has received and not yet read; None once the peer closed.
    inbox: BTreeMap<u64, VecDeque<u8>>,
    peer_closed: Vec<u64>,
    sent: BTreeMap<u64, Vec<u8>>,
    /// Bytes a connection's send buffer still takes.
    room: BTreeMap<u64, usize>,
    closed: Vec<u64>,
    shut: Vec<u64>,
    listener_closed: bool,
}

#[derive(Clone, Default)]
struct Net(Arc<Mutex<World>>);

impl Sockets for Net {
    fn accept(&mut self, listener: u64) -> Result<Option<u64>, u16> {
        assert_eq!(listener, 100);
        Ok(self.0.lock().unwrap().incoming.pop_front())
    }
    fn recv(&mut self, sock: u64, buf: &mut [u8]) -> Result<Option<usize>, u16> {
        let mut w = self.0.lock().unwrap();
        let closed = w.peer_closed.contains(&sock);
        let q = w.inbox.entry(sock).or_default();
        if q.is_empty() {
            return Ok(if closed { Some(0) } else { None });
        }
        let n = buf.len().min(q.len());
        for b in buf.iter_mut().take(n) {
            *b = q.pop_front().unwrap();
        }
        Ok(Some(n))
    }
    fn send(&mut self, sock: u64, data: &[u8]) -> Result<usize, u16> {
        let mut w = self.0.lock().unwrap();
        let room = *w.room.get(&sock).unwrap_or(&usize::MAX);
        let n = data.len().min(room);
        w.room.insert(sock, room - n);
        w.sent.entry(sock).or_default().extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn shutdown_write(&mut self, sock: u64) -> Result<(), u16> {
        self.0.lock().unwrap().shut.push(sock);
        Ok(())
    }
    fn close(&mut self, sock: u64) {
        self.0.lock().unwrap().closed.push(sock);
    }
    fn close_listener(&mut self, _listener: u64) {
        self.0.lock().unwrap().listener_closed = true;
    }
    fn ready(&mut self, handle: u64, listener: bool, write: bool) -> bool {
        let w = self.0.lock().unwrap();
        if listener {
            return !w.incoming.is_empty();
        }
        if write {
            return *w.room.get(&handle).unwrap_or(&usize::MAX) > 0;
        }
        w.inbox.get(&handle).is_some_and(|q| !q.is_empty()) || w.peer_closed.contains(&handle)
    }
}

fn setup() -> (WasiCtx, Vec<u8>, Net) {
    let vfs: &'static Vfs = Box::leak(Box::new(Vfs::new(Arc::new(MemFs::new(1 << 20, || 0)))));
    let config = Config { args: vec!["srv".into()], listeners: vec![100], ..Config::default() };
    let mut ctx = WasiCtx::new(vfs, Box::new(Sys), config).unwrap();
    let net = Net::default();
    ctx.set_sockets(Box::new(net.clone()));
    (ctx, vec![0; 65536], net)
}

fn ok(r: Result<u16, Abort>) -> u16 {
    r.expect("no abort")
}

fn u32_at(m: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(m[at..at + 4].try_into().unwrap())
}

/// An iovec at 1000 pointing at `len` bytes at 2000.
fn iov(m: &mut [u8], len: u32) {
    m[1000..1004].copy_from_slice(&2000u32.to_le_bytes());
    m[1004..1008].copy_from_slice(&len.to_le_bytes());
}

#[test]
fn accept_read_write_and_close() {
    let (mut ctx, mut m, net) = setup();
    // fd 3 is the listener, a socket.
    assert_eq!(ok(ctx.fd_fdstat_get(&mut m, 3, 100)), SUCCESS);
    assert_eq!(m[100], filetype::SOCKET_STREAM);
    // Nobody connected yet: a blocking accept suspends until the network is ready.
    assert_eq!(ctx.sock_accept(&mut m, 3, 0, 200), Err(Abort::Suspend));
    assert!(ctx.waits_for_network());
    assert!(!ctx.ready(0));
    net.0.lock().unwrap().incoming.push_back(7);
    assert!(ctx.ready(0));
    assert_eq!(ctx.complete(&mut m), SUCCESS);
    let conn = u32_at(&m, 200);
    assert_eq!(conn, 4);
    // A request arrives; sock_recv reads it.
    net.0.lock().unwrap().inbox.insert(7, b"GET / HTTP/1.1\r\n\r\n".iter().copied().collect());
    iov(&mut m, 100);
    assert_eq!(ok(ctx.sock_recv(&mut m, conn, 1000, 1, 0, 300, 304)), SUCCESS);
    assert_eq!(u32_at(&m, 300), 18);
    assert_eq!(&m[2000..2018], b"GET / HTTP/1.1\r\n\r\n");
    // Nothing more: blocking recv suspends; with O_NONBLOCK it answers EAGAIN.
    assert_eq!(ctx.sock_recv(&mut m, conn, 1000, 1, 0, 300, 304), Err(Abort::Suspend));
    assert!(!ctx.ready(0));
    net.0.lock().unwrap().peer_closed.push(7);
    assert!(ctx.ready(0));
    assert_eq!(ctx.complete(&mut m), SUCCESS);
    assert_eq!(u32_at(&m, 300), 0, "end of stream");
    // Writing: fd_write works on a socket too; a full buffer blocks until there is room.
    m[2000..2005].copy_from_slice(b"hello");
    iov(&mut m, 5);
    assert_eq!(ok(ctx.sock_send(&mut m, conn, 1000, 1, 0, 400)), SUCCESS);
    assert_eq!(u32_at(&m, 400), 5);
    net.0.lock().unwrap().room.insert(7, 0);
    assert_eq!(ctx.fd_write(&mut m, conn, 1000, 1, 400), Err(Abort::Suspend));
    net.0.lock().unwrap().room.insert(7, 3);
    assert!(ctx.ready(0));
    assert_eq!(ctx.complete(&mut m), SUCCESS);
    assert_eq!(u32_at(&m, 400), 3);
    assert_eq!(net.0.lock().unwrap().sent[&7], b"hellohel");
    assert_eq!(ok(ctx.fd_fdstat_set_flags(conn, fdflags::NONBLOCK)), SUCCESS);
    net.0.lock().unwrap().room.insert(7, 0);
    assert_eq!(ok(ctx.sock_send(&mut m, conn, 1000, 1, 0, 400)), AGAIN);
    // Shutdown and close reach the network.
    assert_eq!(ok(ctx.sock_shutdown(conn, 2)), SUCCESS);
    assert_eq!(ok(ctx.sock_shutdown(conn, 4)), INVAL);
    assert_eq!(ok(ctx.sock_shutdown(3, 2)), NOTCONN);
    assert_eq!(ok(ctx.fd_close(conn)), SUCCESS);
    assert_eq!(net.0.lock().unwrap().shut, [7]);
    assert_eq!(net.0.lock().unwrap().closed, [7]);
    // Misuse: accept on a connection, recv on the listener, bad pointers.
    net.0.lock().unwrap().incoming.push_back(8);
    assert_eq!(ok(ctx.sock_accept(&mut m, 3, 0, 200)), SUCCESS);
    let c2 = u32_at(&m, 200);
    assert_eq!(ok(ctx.sock_accept(&mut m, c2, 0, 200)), INVAL);
    assert_eq!(ok(ctx.sock_recv(&mut m, 3, 1000, 1, 0, 300, 304)), NOTCONN);
    assert_eq!(ok(ctx.sock_accept(&mut m, 3, 0, 65534)), FAULT);
    assert_eq!(ok(ctx.sock_accept(&mut m, 3, 0xff, 200)), INVAL);
    // The program ends: what it still holds is closed.
    drop(ctx);
    let w = net.0.lock().unwrap();
    assert!(w.closed.contains(&8));
    assert!(w.listener_closed);
}

#[test]
fn poll_waits_for_sockets() {
    let (mut ctx, mut m, net) = setup();
    // Subscribe to reads on the listener.
    m[0..8].copy_from_slice(&42u64.to_le_bytes());
    m[8] = eventtype::FD_READ;
    m[16..20].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(ctx.poll_oneoff(&mut m, 0, 200, 1, 500), Err(Abort::Suspend));
    assert!(ctx.waits_for_network());
    assert!(!ctx.ready(0));
    net.0.lock().unwrap().incoming.push_back(9);
    assert!(ctx.ready(0));
    assert_eq!(ctx.complete(&mut m), SUCCESS);
    assert_eq!(u32_at(&m, 500), 1);
    assert_eq!(u64::from_le_bytes(m[200..208].try_into().unwrap()), 42);
    // Already ready: answered at once.
    assert_eq!(ctx.poll_oneoff(&mut m, 0, 200, 1, 500), Ok(SUCCESS));
}
