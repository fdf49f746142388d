//! The stack over smoltcp's loopback device: a server and its clients in one stack, the way
//! Keel's WASI server and the host's clients meet through the network.

use keel_net::{NetError, Stack, TcpStatus};
use smoltcp::phy::{Loopback, Medium};

struct Net {
    dev: Loopback,
    stack: Stack,
    now: u64,
}

impl Net {
    fn new() -> Net {
        let mut dev = Loopback::new(Medium::Ip);
        let stack = Stack::new(&mut dev, None, 0, 7);
        Net { dev, stack, now: 0 }
    }

    /// Polls with time moving on 1 ms per round.
    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.now += 1;
            self.stack.poll(self.now, &mut self.dev);
        }
    }
}

const LOCAL: core::net::Ipv4Addr = core::net::Ipv4Addr::new(127, 0, 0, 1);

#[test]
fn a_connection_carries_bytes_both_ways_and_ends_cleanly() {
    let mut n = Net::new();
    let l = n.stack.listen(8080, 4).unwrap();
    let c = n.stack.connect(LOCAL, 8080).unwrap();
    assert_eq!(n.stack.status(c), Ok(TcpStatus::Connecting));
    n.run(5);
    assert_eq!(n.stack.status(c), Ok(TcpStatus::Open));
    assert!(n.stack.acceptable(l));
    let s = n.stack.accept(l).unwrap().unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (mut sent, mut got) = (0, Vec::new());
    let mut buf = vec![0u8; 8192];
    while got.len() < data.len() {
        sent += n.stack.send(c, &data[sent..]).unwrap();
        n.run(1);
        while let Some(k) = n.stack.recv(s, &mut buf).unwrap() {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
    }
    assert_eq!(got, data);
    // The server answers and ends its side; the client reads to the end.
    assert_eq!(n.stack.send(s, b"bye").unwrap(), 3);
    n.stack.shutdown_write(s).unwrap();
    n.run(5);
    assert_eq!(n.stack.recv(c, &mut buf).unwrap(), Some(3));
    assert_eq!(&buf[..3], b"bye");
    assert_eq!(n.stack.recv(c, &mut buf).unwrap(), Some(0));
    assert_eq!(n.stack.status(c), Ok(TcpStatus::PeerClosed));
    n.stack.close(c);
    n.stack.close(s);
    n.run(50);
    assert_eq!(n.stack.open_sockets(), 1, "only the listener is left");
    n.stack.unlisten(l);
    assert_eq!(n.stack.open_sockets(), 0);
}

#[test]
fn a_closed_port_refuses() {
    let mut n = Net::new();
    let c = n.stack.connect(LOCAL, 9).unwrap();
    n.run(5);
    assert_eq!(n.stack.status(c), Ok(TcpStatus::Failed(NetError::Refused)));
    let mut buf = [0u8; 4];
    assert_eq!(n.stack.recv(c, &mut buf), Err(NetError::Refused));
    assert_eq!(n.stack.send(c, b"x"), Err(NetError::Refused));
}

#[test]
fn sixteen_clients_at_once_all_get_in_and_sockets_come_back() {
    let mut n = Net::new();
    let l = n.stack.listen(80, 16).unwrap();
    assert_eq!(n.stack.listen(80, 1), Err(NetError::AddressInUse));
    for round in 0..3 {
        let clients: Vec<_> = (0..16).map(|_| n.stack.connect(LOCAL, 80).unwrap()).collect();
        n.run(10);
        let mut served = Vec::new();
        while let Some(s) = n.stack.accept(l).unwrap() {
            served.push(s);
        }
        assert_eq!(served.len(), 16, "round {round}");
        for (i, s) in served.iter().enumerate() {
            n.stack.send(*s, format!("hello {i}").as_bytes()).unwrap();
            n.stack.shutdown_write(*s).unwrap();
        }
        n.run(10);
        let mut buf = [0u8; 64];
        let mut greetings: Vec<String> = clients
            .iter()
            .map(|c| {
                let k = n.stack.recv(*c, &mut buf).unwrap().unwrap();
                String::from_utf8(buf[..k].to_vec()).unwrap()
            })
            .collect();
        greetings.sort();
        assert_eq!(greetings.len(), 16);
        for c in clients {
            n.stack.close(c);
        }
        for s in served {
            n.stack.close(s);
        }
        n.run(100);
        assert_eq!(n.stack.open_sockets(), 1, "round {round}: only the listener");
    }
}

#[test]
fn names_and_pings() {
    let mut n = Net::new();
    n.stack.add_host("host", core::net::Ipv4Addr::new(10, 0, 2, 100));
    let q = n.stack.resolve("HOST").unwrap();
    assert_eq!(n.stack.lookup_result(q), Ok(Some(core::net::Ipv4Addr::new(10, 0, 2, 100))));
    let q = n.stack.resolve("10.1.2.3").unwrap();
    assert_eq!(n.stack.lookup_result(q), Ok(Some(core::net::Ipv4Addr::new(10, 1, 2, 3))));
    // No DNS server configured: a clear error, not a hang.
    assert!(matches!(n.stack.resolve("example.org"), Err(NetError::NoRoute)));
    n.stack.ping_send(LOCAL, 1, b"keel").unwrap();
    n.run(3);
    assert_eq!(n.stack.ping_recv(), Some((1, LOCAL)));
    assert_eq!(n.stack.ping_recv(), None);
}

#[test]
fn an_unconfigured_interface_has_no_route() {
    let mut dev = Loopback::new(Medium::Ethernet);
    let mut stack = Stack::new(&mut dev, Some([2, 0, 0, 0, 0, 1]), 0, 1);
    let gateway = core::net::Ipv4Addr::new(10, 0, 2, 2);
    assert_eq!(stack.connect(gateway, 80), Err(NetError::NoRoute));
    assert_eq!(stack.ping_send(gateway, 1, b""), Err(NetError::NoRoute));
    // 127.0.0.1 is Keel's own, configured or not.
    assert!(stack.connect(LOCAL, 80).is_ok());
    assert_eq!(stack.connect(core::net::Ipv4Addr::UNSPECIFIED, 80), Err(NetError::InvalidAddress));
    // An address but no gateway (QEMU's restricted network): only the subnet is reachable.
    stack.set_static(core::net::Ipv4Addr::new(10, 0, 2, 15), 24, None, &[]);
    assert!(stack.connect(core::net::Ipv4Addr::new(10, 0, 2, 100), 80).is_ok());
    assert_eq!(stack.connect(core::net::Ipv4Addr::new(192, 0, 2, 1), 80), Err(NetError::NoRoute));
    stack.set_static(core::net::Ipv4Addr::new(10, 0, 2, 15), 24, Some(core::net::Ipv4Addr::new(10, 0, 2, 2)), &[]);
    assert_eq!(stack.config().address, Some((core::net::Ipv4Addr::new(10, 0, 2, 15), 24)));
    assert!(stack.connect(core::net::Ipv4Addr::new(10, 0, 2, 2), 80).is_ok());
    assert!(stack.connect(core::net::Ipv4Addr::new(192, 0, 2, 1), 80).is_ok());
}

/// A cable between two interfaces: what one sends, the other receives.
mod wire {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    use keel_net::smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
    use keel_net::smoltcp::time::Instant;

    type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

    pub struct End {
        rx: Queue,
        tx: Queue,
    }

    impl End {
        /// True if nothing was sent to this end.
        pub fn is_quiet(&self) -> bool {
            self.rx.borrow().is_empty()
        }
    }

    pub fn pair() -> (End, End) {
        let (a, b): (Queue, Queue) = (Default::default(), Default::default());
        (End { rx: a.clone(), tx: b.clone() }, End { rx: b, tx: a })
    }

    pub struct Rx(Vec<u8>);
    pub struct Tx(Queue);

    impl phy::RxToken for Rx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl phy::TxToken for Tx {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut buf = vec![0; len];
            let r = f(&mut buf);
            self.0.borrow_mut().push_back(buf);
            r
        }
    }

    impl Device for End {
        type RxToken<'a> = Rx;
        type TxToken<'a> = Tx;
        fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
            let p = self.rx.borrow_mut().pop_front()?;
            Some((Rx(p), Tx(self.tx.clone())))
        }
        fn transmit(&mut self, _: Instant) -> Option<Tx> {
            Some(Tx(self.tx.clone()))
        }
        fn capabilities(&self) -> DeviceCapabilities {
            let mut c = DeviceCapabilities::default();
            c.medium = Medium::Ethernet;
            c.max_transmission_unit = 1514;
            c
        }
    }
}

/// A DNS server on the other end of the wire answers one name: a lookup goes out to the
/// configured server and comes back as an address; another name is not found.
#[test]
fn names_resolve_through_the_configured_dns_server() {
    use keel_net::smoltcp::iface::{Config, Interface, SocketSet};
    use keel_net::smoltcp::socket::udp;
    use keel_net::smoltcp::time::Instant;
    use keel_net::smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

    let (mut a, mut b) = wire::pair();
    let mut stack = Stack::new(&mut a, Some([2, 0, 0, 0, 0, 1]), 0, 3);
    let server_ip = core::net::Ipv4Addr::new(10, 0, 2, 3);
    stack.set_static(core::net::Ipv4Addr::new(10, 0, 2, 15), 24, None, &[server_ip]);
    // The server side: a bare smoltcp interface with a UDP socket on port 53.
    let mut iface =
        Interface::new(Config::new(EthernetAddress([2, 0, 0, 0, 0, 2]).into()), &mut b, Instant::from_millis(0));
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(server_ip), 24)).unwrap();
    });
    let mut set = SocketSet::new(vec![]);
    let mut udp = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 2048]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 2048]),
    );
    udp.bind(53).unwrap();
    let h = set.add(udp);
    let mut answered = 0;
    let mut lookup = |name: &str, stack: &mut Stack, now: &mut u64| {
        let q = stack.resolve(name).unwrap();
        for _ in 0..200 {
            *now += 10;
            stack.poll(*now, &mut a);
            iface.poll(Instant::from_millis(*now as i64), &mut b, &mut set);
            let s = set.get_mut::<udp::Socket>(h);
            if let Ok((query, meta)) = s.recv() {
                let query = query.to_vec();
                // The question ends after the name's labels, then type and class.
                let mut end = 12;
                while query[end] != 0 {
                    end += 1 + query[end] as usize;
                }
                end += 5;
                let known = &query[12..end - 4] == b"\x04keel\x04test\x00";
                let mut reply = query[..end].to_vec();
                reply[2] = 0x81;
                reply[3] = if known { 0x80 } else { 0x83 };
                reply[6..8].copy_from_slice(&[0, u8::from(known)]);
                if known {
                    reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 2, 77]);
                }
                s.send_slice(&reply, meta.endpoint).unwrap();
                answered += 1;
            }
            match stack.lookup_result(q) {
                Ok(None) => continue,
                other => return other,
            }
        }
        panic!("no answer for {name}");
    };
    let mut now = 0;
    assert_eq!(lookup("keel.test", &mut stack, &mut now), Ok(Some(core::net::Ipv4Addr::new(10, 0, 2, 77))));
    assert_eq!(lookup("nowhere.test", &mut stack, &mut now), Err(NetError::NameNotFound));
    assert_eq!(answered, 2);
}

/// Keel talks to itself: a connection to 127.0.0.1 goes over the loopback interface, never
/// the card.
#[test]
fn connections_to_127_0_0_1_stay_inside() {
    let (mut a, b) = wire::pair();
    let mut stack = Stack::new(&mut a, Some([2, 0, 0, 0, 0, 1]), 0, 3);
    stack.set_static(core::net::Ipv4Addr::new(10, 0, 2, 15), 24, None, &[]);
    let l = stack.listen(8080, 4).unwrap();
    let mut now = 0;
    for round in 0..3 {
        let c = stack.connect(LOCAL, 8080).unwrap();
        for _ in 0..10 {
            now += 1;
            stack.poll(now, &mut a);
        }
        assert_eq!(stack.status(c), Ok(TcpStatus::Open), "round {round}");
        let s = stack.accept(l).unwrap().expect("accepted");
        stack.send(c, b"ping").unwrap();
        for _ in 0..5 {
            now += 1;
            stack.poll(now, &mut a);
        }
        let mut buf = [0u8; 8];
        assert_eq!(stack.recv(s, &mut buf).unwrap(), Some(4));
        stack.close(c);
        stack.close(s);
        for _ in 0..20 {
            now += 1;
            stack.poll(now, &mut a);
        }
    }
    assert_eq!(stack.open_sockets(), 1);
    assert!(b.is_quiet(), "nothing went out on the card");
}
