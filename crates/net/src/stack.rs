//! The network stack: one smoltcp interface with its sockets, configured by DHCP (or by hand),
//! and the operations Keel's commands and WASI sockets need, in terms they can act on: a
//! connect that is refused, times out or has no route says which; a listening port keeps a
//! backlog of sockets so that many clients can connect at once; closed sockets are reaped.
//!
//! The stack never blocks and never reads a clock: the caller passes the time, polls after
//! each device interrupt and at [`Stack::poll_delay_ms`], and waits between polls.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, Medium};
use smoltcp::socket::{dhcpv4, dns, icmp, tcp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, IpEndpoint, Ipv4Cidr,
};

/// Send and receive buffer of each TCP socket.
pub const TCP_BUFFER: usize = 64 * 1024;
/// How long a connection attempt or an unacknowledged send may take.
pub const TCP_TIMEOUT_MS: u64 = 10_000;
/// Listening sockets kept per port on the loopback interface.
const LO_BACKLOG: usize = 4;
/// Ident of Keel's ICMP echo requests.
const PING_IDENT: u16 = 0x4b45;

/// What went wrong, in terms a user can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The interface has no address yet (no DHCP answer) or no route to the destination.
    NoRoute,
    /// The peer answered with a reset to the connection attempt.
    Refused,
    /// Nobody answered in time.
    TimedOut,
    /// The connection was reset after it was established.
    Reset,
    /// The socket is closed (or was never connected).
    Closed,
    /// An address or port the stack cannot use (0, broadcast, ...).
    InvalidAddress,
    /// Something already listens on that port.
    AddressInUse,
    /// The name does not resolve (or the DNS server did not answer).
    NameNotFound,
    /// A handle that does not name a live socket.
    BadHandle,
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NetError::NoRoute => "no route to host (is the network configured? see `ip`)",
            NetError::Refused => "connection refused",
            NetError::TimedOut => "timed out",
            NetError::Reset => "connection reset by peer",
            NetError::Closed => "connection closed",
            NetError::InvalidAddress => "invalid address",
            NetError::AddressInUse => "address in use",
            NetError::NameNotFound => "name not found",
            NetError::BadHandle => "bad socket",
        })
    }
}

/// A socket in one of the two socket sets: the card's, or loopback's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    lo: bool,
    h: SocketHandle,
}

/// A TCP connection (or one being made).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sock(Key);

/// A listening port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener(u32);

/// A DNS lookup in progress.
#[derive(Clone, Copy)]
pub enum Lookup {
    Done(Ipv4Addr),
    Pending(dns::QueryHandle),
}

/// Where a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpStatus {
    Connecting,
    Open,
    /// The peer sent FIN: what it sent can still be read.
    PeerClosed,
    Failed(NetError),
}

/// The interface's addresses, as DHCP (or the caller) set them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfConfig {
    pub mac: Option<[u8; 6]>,
    pub address: Option<(Ipv4Addr, u8)>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// True once DHCP gave an address (false for static or none).
    pub from_dhcp: bool,
}

/// Per-connection facts the stack keeps beside smoltcp's socket.
#[derive(Clone, Copy, Debug)]
struct Meta {
    started_ms: u64,
    established: bool,
    closing: bool,
}

struct ListenState {
    port: u16,
    backlog: usize,
    /// Sockets listening or connected but not yet accepted, oldest first (on the card's
    /// interface and on loopback).
    queue: Vec<Key>,
}

/// Counters of what went through the device (kept by the driver, shown by `ip`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
}

/// The network stack.
pub struct Stack {
    iface: Interface,
    /// 127.0.0.1/8 on a loopback device of its own (None when the main interface is itself a
    /// loopback): Keel's programs reach Keel's servers there.
    lo: Option<(Interface, smoltcp::phy::Loopback)>,
    /// The loopback interface's TCP sockets (an interface sends only its own set's packets).
    lo_sockets: SocketSet<'static>,
    /// Loopback moved a socket since [`Stack::take_loopback_activity`] (no interrupt tells).
    lo_activity: bool,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    dns: SocketHandle,
    icmp: SocketHandle,
    config: IfConfig,
    meta: BTreeMap<Key, Meta>,
    listeners: BTreeMap<u32, ListenState>,
    next_listener: u32,
    next_port: u16,
    hosts: Vec<(String, Ipv4Addr)>,
    now_ms: u64,
}

fn instant(ms: u64) -> Instant {
    Instant::from_millis(ms as i64)
}

fn new_tcp() -> tcp::Socket<'static> {
    let mut s =
        tcp::Socket::new(tcp::SocketBuffer::new(vec![0; TCP_BUFFER]), tcp::SocketBuffer::new(vec![0; TCP_BUFFER]));
    s.set_timeout(Some(Duration::from_millis(TCP_TIMEOUT_MS)));
    s.set_nagle_enabled(false);
    s
}

impl Stack {
    /// A stack on `device`: Ethernet with `mac`, or (without one) a bare IP device such as
    /// smoltcp's loopback, which gets 127.0.0.1/8.
    pub fn new<D: Device + ?Sized>(device: &mut D, mac: Option<[u8; 6]>, now_ms: u64, seed: u64) -> Stack {
        let hw = match mac {
            Some(m) => HardwareAddress::Ethernet(EthernetAddress(m)),
            None => HardwareAddress::Ip,
        };
        let mut config = Config::new(hw);
        config.random_seed = seed;
        let mut iface = Interface::new(config, device, instant(now_ms));
        let mut sockets = SocketSet::new(Vec::new());
        let dns = sockets.add(dns::Socket::new(&[], vec![]));
        let icmp_socket = {
            let rx = icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 16], vec![0; 4096]);
            let tx = icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 16], vec![0; 4096]);
            let mut s = icmp::Socket::new(rx, tx);
            let _ = s.bind(icmp::Endpoint::Ident(PING_IDENT));
            s
        };
        let icmp = sockets.add(icmp_socket);
        let mut cfg = IfConfig { mac, ..IfConfig::default() };
        let lo_addr = IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8);
        let lo = if mac.is_none() {
            iface.update_ip_addrs(|a| {
                let _ = a.push(lo_addr);
            });
            cfg.address = Some((Ipv4Addr::new(127, 0, 0, 1), 8));
            None
        } else {
            let mut dev = smoltcp::phy::Loopback::new(Medium::Ip);
            let mut c = Config::new(HardwareAddress::Ip);
            c.random_seed = seed ^ 0x6c6f;
            let mut lo = Interface::new(c, &mut dev, instant(now_ms));
            lo.update_ip_addrs(|a| {
                let _ = a.push(lo_addr);
            });
            Some((lo, dev))
        };
        Stack {
            iface,
            lo,
            lo_sockets: SocketSet::new(Vec::new()),
            lo_activity: false,
            sockets,
            dhcp: None,
            dns,
            icmp,
            config: cfg,
            meta: BTreeMap::new(),
            listeners: BTreeMap::new(),
            next_listener: 1,
            next_port: 49152 + (seed % 16000) as u16,
            hosts: Vec::new(),
            now_ms,
        }
    }

    /// Asks for an address by DHCP (applied by [`Stack::poll`] when it comes).
    pub fn start_dhcp(&mut self) {
        if self.dhcp.is_none() {
            self.dhcp = Some(self.sockets.add(dhcpv4::Socket::new()));
        }
    }

    /// Sets the address, gateway and DNS servers by hand.
    pub fn set_static(&mut self, address: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>, dns: &[Ipv4Addr]) {
        self.apply(Some((address, prefix)), gateway, dns, false);
    }

    /// A name the stack answers itself, before asking DNS.
    pub fn add_host(&mut self, name: &str, addr: Ipv4Addr) {
        self.hosts.push((String::from(name), addr));
    }

    fn apply(&mut self, address: Option<(Ipv4Addr, u8)>, gateway: Option<Ipv4Addr>, dns: &[Ipv4Addr], dhcp: bool) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            if let Some((a, p)) = address {
                let _ = addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(a, p)));
            }
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(g) = gateway {
            let _ = self.iface.routes_mut().add_default_ipv4_route(g);
        }
        let servers: Vec<IpAddress> = dns.iter().map(|d| IpAddress::Ipv4(*d)).collect();
        self.sockets.get_mut::<dns::Socket>(self.dns).update_servers(&servers);
        self.config.address = address;
        self.config.gateway = gateway;
        self.config.dns = dns.to_vec();
        self.config.from_dhcp = dhcp && address.is_some();
    }

    /// The interface's configuration.
    pub fn config(&self) -> &IfConfig {
        &self.config
    }

    /// Processes what the device received and sends what is due. True if any socket changed.
    pub fn poll<D: Device + ?Sized>(&mut self, now_ms: u64, device: &mut D) -> bool {
        self.now_ms = now_ms;
        let mut changed = self.iface.poll(instant(now_ms), device, &mut self.sockets)
            == smoltcp::iface::PollResult::SocketStateChanged;
        if let Some((lo, dev)) = self.lo.as_mut() {
            // Twice: what one round sends to itself is received in the next.
            for _ in 0..2 {
                changed |= lo.poll(instant(now_ms), dev, &mut self.lo_sockets)
                    == smoltcp::iface::PollResult::SocketStateChanged;
            }
        }
        if let Some(h) = self.dhcp {
            // Copied out of the event (it borrows the socket set).
            let event = match self.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
                Some(dhcpv4::Event::Configured(c)) => {
                    let dns: Vec<Ipv4Addr> = c.dns_servers.iter().copied().collect();
                    Some(Some((c.address.address(), c.address.prefix_len(), c.router, dns)))
                }
                Some(dhcpv4::Event::Deconfigured) => Some(None),
                None => None,
            };
            match event {
                Some(Some((addr, prefix, router, dns))) => {
                    self.apply(Some((addr, prefix)), router, &dns, true);
                    log::debug!("network: DHCP gave {addr}/{prefix}");
                }
                Some(None) => self.apply(None, None, &[], true),
                None => {}
            }
        }
        self.track();
        changed
    }

    /// True (once) if a poll moved loopback sockets: no device interrupt announces those, so
    /// the caller wakes whoever waits.
    pub fn take_loopback_activity(&mut self) -> bool {
        core::mem::take(&mut self.lo_activity)
    }

    /// Milliseconds until the stack needs polling again (None: only when a packet comes).
    pub fn poll_delay_ms(&mut self, now_ms: u64) -> Option<u64> {
        let main = self.iface.poll_delay(instant(now_ms), &self.sockets).map(|d| d.total_millis());
        let lo_sockets = &self.lo_sockets;
        let lo =
            self.lo.as_mut().and_then(|(lo, _)| lo.poll_delay(instant(now_ms), lo_sockets)).map(|d| d.total_millis());
        match (main, lo) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn tcp_at(&self, k: Key) -> &tcp::Socket<'static> {
        if k.lo {
            self.lo_sockets.get::<tcp::Socket>(k.h)
        } else {
            self.sockets.get::<tcp::Socket>(k.h)
        }
    }

    fn tcp_at_mut(&mut self, k: Key) -> &mut tcp::Socket<'static> {
        if k.lo {
            self.lo_sockets.get_mut::<tcp::Socket>(k.h)
        } else {
            self.sockets.get_mut::<tcp::Socket>(k.h)
        }
    }

    fn add_tcp(&mut self, lo: bool, s: tcp::Socket<'static>) -> Key {
        let h = if lo { self.lo_sockets.add(s) } else { self.sockets.add(s) };
        Key { lo, h }
    }

    fn remove_tcp(&mut self, k: Key) {
        if k.lo {
            self.lo_sockets.remove(k.h);
        } else {
            self.sockets.remove(k.h);
        }
    }

    /// Notes established connections and frees closed ones nobody holds.
    fn track(&mut self) {
        let mut gone = Vec::new();
        let keys: Vec<Key> = self.meta.keys().copied().collect();
        for k in keys {
            let state = self.tcp_at(k).state();
            let Some(m) = self.meta.get_mut(&k) else { continue };
            if state == tcp::State::Established {
                m.established = true;
            }
            if m.closing && matches!(state, tcp::State::Closed | tcp::State::TimeWait) {
                gone.push(k);
            }
        }
        for k in gone {
            self.meta.remove(&k);
            self.remove_tcp(k);
        }
    }

    /// True if `addr` is on the interface's subnet or there is a default route.
    fn routable(&self, addr: Ipv4Addr) -> bool {
        if addr.is_loopback() && self.lo.is_some() {
            return true;
        }
        match self.config.address {
            None => false,
            Some(_) if self.config.gateway.is_some() => true,
            Some((own, prefix)) => {
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
                u32::from(own) & mask == u32::from(addr) & mask || addr.is_loopback() && own.is_loopback()
            }
        }
    }

    fn ephemeral_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p >= 65000 { 49152 } else { p + 1 };
        p
    }

    /// Starts a connection to `addr:port`.
    pub fn connect(&mut self, addr: Ipv4Addr, port: u16) -> Result<Sock, NetError> {
        if port == 0 || addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
            return Err(NetError::InvalidAddress);
        }
        if !self.routable(addr) {
            return Err(NetError::NoRoute);
        }
        let local = self.ephemeral_port();
        let lo = addr.is_loopback() && self.lo.is_some();
        let k = self.add_tcp(lo, new_tcp());
        let remote = IpEndpoint::new(IpAddress::Ipv4(addr), port);
        let result = match (lo, self.lo.as_mut()) {
            (true, Some((iface, _))) => {
                self.lo_sockets.get_mut::<tcp::Socket>(k.h).connect(iface.context(), remote, local)
            }
            _ => self.sockets.get_mut::<tcp::Socket>(k.h).connect(self.iface.context(), remote, local),
        };
        if let Err(e) = result {
            self.remove_tcp(k);
            return Err(match e {
                tcp::ConnectError::Unaddressable => NetError::NoRoute,
                tcp::ConnectError::InvalidState => NetError::BadHandle,
            });
        }
        self.meta.insert(k, Meta { started_ms: self.now_ms, established: false, closing: false });
        Ok(Sock(k))
    }

    fn tcp(&self, s: Sock) -> Result<&tcp::Socket<'static>, NetError> {
        match self.meta.get(&s.0) {
            Some(m) if !m.closing => Ok(self.tcp_at(s.0)),
            _ => Err(NetError::BadHandle),
        }
    }

    /// Where a connection is.
    pub fn status(&self, s: Sock) -> Result<TcpStatus, NetError> {
        let sock = self.tcp(s)?;
        let m = self.meta[&s.0];
        Ok(match sock.state() {
            tcp::State::SynSent | tcp::State::SynReceived => TcpStatus::Connecting,
            tcp::State::Listen => TcpStatus::Connecting,
            tcp::State::Established | tcp::State::FinWait1 | tcp::State::FinWait2 => TcpStatus::Open,
            tcp::State::CloseWait | tcp::State::LastAck | tcp::State::Closing | tcp::State::TimeWait => {
                if sock.can_recv() || sock.may_recv() || m.established {
                    TcpStatus::PeerClosed
                } else {
                    TcpStatus::Failed(NetError::Refused)
                }
            }
            tcp::State::Closed if m.established => {
                // Closed after being open: either an orderly end already read, or a reset.
                if sock.can_recv() {
                    TcpStatus::PeerClosed
                } else {
                    TcpStatus::Failed(NetError::Reset)
                }
            }
            tcp::State::Closed => {
                let waited = self.now_ms.saturating_sub(m.started_ms);
                TcpStatus::Failed(if waited + 100 >= TCP_TIMEOUT_MS { NetError::TimedOut } else { NetError::Refused })
            }
        })
    }

    /// Queues bytes for sending: how many were taken (0 when the buffer is full).
    pub fn send(&mut self, s: Sock, data: &[u8]) -> Result<usize, NetError> {
        let status = self.status(s)?;
        let sock = self.tcp_at_mut(s.0);
        if !sock.may_send() {
            return match status {
                TcpStatus::Connecting => Ok(0),
                TcpStatus::Failed(e) => Err(e),
                _ => Err(NetError::Closed),
            };
        }
        sock.send_slice(data).map_err(|_| NetError::Closed)
    }

    /// Reads received bytes: Some(0) at the end of the stream, None when nothing is there yet.
    pub fn recv(&mut self, s: Sock, buf: &mut [u8]) -> Result<Option<usize>, NetError> {
        let status = self.status(s)?;
        let sock = self.tcp_at_mut(s.0);
        if sock.can_recv() {
            return sock.recv_slice(buf).map(Some).map_err(|_| NetError::Closed);
        }
        match status {
            TcpStatus::Connecting | TcpStatus::Open => Ok(None),
            TcpStatus::PeerClosed => Ok(Some(0)),
            TcpStatus::Failed(e) => Err(e),
        }
    }

    /// True when `recv` would not return None.
    pub fn readable(&self, s: Sock) -> bool {
        match (self.tcp(s), self.status(s)) {
            (Ok(sock), Ok(st)) => sock.can_recv() || !matches!(st, TcpStatus::Connecting | TcpStatus::Open),
            _ => true,
        }
    }

    /// True when `send` would take bytes (or fail).
    pub fn writable(&self, s: Sock) -> bool {
        match (self.tcp(s), self.status(s)) {
            (Ok(sock), Ok(st)) => sock.can_send() || !matches!(st, TcpStatus::Connecting),
            _ => true,
        }
    }

    /// Bytes queued but not yet acknowledged by the peer.
    pub fn unacked(&self, s: Sock) -> usize {
        self.tcp(s).map(|t| t.send_queue()).unwrap_or(0)
    }

    /// Sends FIN after what is queued: the peer sees the end of the stream.
    pub fn shutdown_write(&mut self, s: Sock) -> Result<(), NetError> {
        self.tcp(s)?;
        self.tcp_at_mut(s.0).close();
        Ok(())
    }

    /// Ends a connection gracefully; the socket is freed once the close completes.
    pub fn close(&mut self, s: Sock) {
        let closing = self.meta.get(&s.0).map(|m| m.closing);
        if closing == Some(false) {
            if let Some(m) = self.meta.get_mut(&s.0) {
                m.closing = true;
            }
            let sock = self.tcp_at_mut(s.0);
            // Unread data left behind: tell the peer with a reset, as Unix does.
            if sock.can_recv() {
                sock.abort();
            } else {
                sock.close();
            }
        }
        self.track();
    }

    /// Ends a connection at once (reset) and frees it.
    pub fn abort(&mut self, s: Sock) {
        if self.meta.remove(&s.0).is_some() {
            self.tcp_at_mut(s.0).abort();
            // Let the reset go out at the next poll, then forget the socket.
            self.meta.insert(s.0, Meta { started_ms: self.now_ms, established: false, closing: true });
        }
    }

    /// Listens on `port` with room for `backlog` connections not yet accepted.
    pub fn listen(&mut self, port: u16, backlog: usize) -> Result<Listener, NetError> {
        if port == 0 {
            return Err(NetError::InvalidAddress);
        }
        if self.listeners.values().any(|l| l.port == port) {
            return Err(NetError::AddressInUse);
        }
        let id = self.next_listener;
        self.next_listener += 1;
        let mut state = ListenState { port, backlog: backlog.clamp(1, 128), queue: Vec::new() };
        self.refill(&mut state)?;
        self.listeners.insert(id, state);
        Ok(Listener(id))
    }

    /// Keeps `backlog` listening sockets on the card's interface and a few on loopback (every
    /// socket costs time in every poll; loopback clients are rare).
    fn refill(&mut self, l: &mut ListenState) -> Result<(), NetError> {
        let sets: &[bool] = if self.lo.is_some() { &[false, true] } else { &[false] };
        for &lo in sets {
            let want = if lo { l.backlog.min(LO_BACKLOG) } else { l.backlog };
            while l.queue.iter().filter(|k| k.lo == lo).count() < want {
                let mut s = new_tcp();
                s.listen(l.port).map_err(|_| NetError::AddressInUse)?;
                let k = self.add_tcp(lo, s);
                l.queue.push(k);
            }
        }
        Ok(())
    }

    /// A connection that arrived on `l`, if one has (the listening slot it used is replaced).
    pub fn accept(&mut self, l: Listener) -> Result<Option<Sock>, NetError> {
        let mut state = self.listeners.remove(&l.0).ok_or(NetError::BadHandle)?;
        let ready = state
            .queue
            .iter()
            .position(|k| !matches!(self.tcp_at(*k).state(), tcp::State::Listen | tcp::State::SynReceived));
        let out = ready.map(|i| {
            let k = state.queue.remove(i);
            self.meta.insert(k, Meta { started_ms: self.now_ms, established: true, closing: false });
            Sock(k)
        });
        let refilled = self.refill(&mut state);
        self.listeners.insert(l.0, state);
        refilled.map(|_| out)
    }

    /// True when `accept` would hand out a connection.
    pub fn acceptable(&self, l: Listener) -> bool {
        self.listeners.get(&l.0).is_some_and(|st| {
            st.queue.iter().any(|k| !matches!(self.tcp_at(*k).state(), tcp::State::Listen | tcp::State::SynReceived))
        })
    }

    /// The port a listener listens on.
    pub fn listener_port(&self, l: Listener) -> Option<u16> {
        self.listeners.get(&l.0).map(|s| s.port)
    }

    /// Stops listening; connections not yet accepted are reset.
    pub fn unlisten(&mut self, l: Listener) {
        if let Some(state) = self.listeners.remove(&l.0) {
            for k in state.queue {
                self.tcp_at_mut(k).abort();
                self.meta.insert(k, Meta { started_ms: self.now_ms, established: false, closing: true });
            }
        }
    }

    /// Connections and listeners held by users (not the stack's own DHCP, DNS and ICMP
    /// sockets, nor connections still closing).
    pub fn open_sockets(&self) -> usize {
        self.meta.values().filter(|m| !m.closing).count() + self.listeners.len()
    }

    /// Starts resolving `name` (an address literal or a name from the hosts table resolves at
    /// once).
    pub fn resolve(&mut self, name: &str) -> Result<Lookup, NetError> {
        if let Ok(a) = name.parse::<Ipv4Addr>() {
            return Ok(Lookup::Done(a));
        }
        if let Some((_, a)) = self.hosts.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Ok(Lookup::Done(*a));
        }
        if self.config.dns.is_empty() {
            return Err(NetError::NoRoute);
        }
        let cx = self.iface.context();
        self.sockets
            .get_mut::<dns::Socket>(self.dns)
            .start_query(cx, name, smoltcp::wire::DnsQueryType::A)
            .map(Lookup::Pending)
            .map_err(|_| NetError::NameNotFound)
    }

    /// The result of a lookup: None while pending.
    pub fn lookup_result(&mut self, q: Lookup) -> Result<Option<Ipv4Addr>, NetError> {
        match q {
            Lookup::Done(a) => Ok(Some(a)),
            Lookup::Pending(h) => match self.sockets.get_mut::<dns::Socket>(self.dns).get_query_result(h) {
                Ok(addrs) => addrs
                    .iter()
                    .find_map(|a| match a {
                        IpAddress::Ipv4(v4) => Some(*v4),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    })
                    .map(Some)
                    .ok_or(NetError::NameNotFound),
                Err(dns::GetQueryResultError::Pending) => Ok(None),
                Err(dns::GetQueryResultError::Failed) => Err(NetError::NameNotFound),
            },
        }
    }

    /// Sends one ICMP echo request.
    pub fn ping_send(&mut self, addr: Ipv4Addr, seq: u16, payload: &[u8]) -> Result<(), NetError> {
        if !self.routable(addr) {
            return Err(NetError::NoRoute);
        }
        let repr = Icmpv4Repr::EchoRequest { ident: PING_IDENT, seq_no: seq, data: payload };
        let caps = self.iface_checksums();
        let sock = self.sockets.get_mut::<icmp::Socket>(self.icmp);
        let buf = sock.send(repr.buffer_len(), IpAddress::Ipv4(addr)).map_err(|e| match e {
            icmp::SendError::Unaddressable => NetError::NoRoute,
            icmp::SendError::BufferFull => NetError::TimedOut,
        })?;
        let mut packet = Icmpv4Packet::new_unchecked(buf);
        repr.emit(&mut packet, &caps);
        Ok(())
    }

    fn iface_checksums(&self) -> smoltcp::phy::ChecksumCapabilities {
        smoltcp::phy::ChecksumCapabilities::default()
    }

    /// An echo reply that arrived: (sequence number, from).
    pub fn ping_recv(&mut self) -> Option<(u16, Ipv4Addr)> {
        let sock = self.sockets.get_mut::<icmp::Socket>(self.icmp);
        while sock.can_recv() {
            let Ok((data, from)) = sock.recv() else { return None };
            let Ok(packet) = Icmpv4Packet::new_checked(data) else { continue };
            let Ok(repr) = Icmpv4Repr::parse(&packet, &smoltcp::phy::ChecksumCapabilities::default()) else {
                continue;
            };
            if let (Icmpv4Repr::EchoReply { ident: PING_IDENT, seq_no, .. }, IpAddress::Ipv4(from)) = (repr, from) {
                return Some((seq_no, from));
            }
        }
        None
    }

    /// The medium the interface runs on.
    pub fn medium(&self) -> Medium {
        match self.config.mac {
            Some(_) => Medium::Ethernet,
            None => Medium::Ip,
        }
    }
}
