//! The network: a virtio-net card (MMIO or PCI) as a smoltcp device, the `keel-net` stack over
//! it, and the glue that lets tasks wait for the network without spinning. The card's
//! interrupt wakes every task sleeping for [`task::EVENT_NET`]; each polls the stack when it
//! runs. A kernel task ("net") polls when nobody else does: DHCP, ARP, TCP timers, and
//! connections arriving for listeners.

pub(crate) mod cmd;

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_net::{Counters, Stack};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use spin::Mutex;
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::SomeTransport;

use crate::arch::cpu::IrqSource;
use crate::drivers::virtio::KeelHal;
use crate::{arch::time, sched::task};

/// Receive buffers on the card's queue.
const QUEUE: usize = 64;
/// Bytes of each receive buffer (an Ethernet frame and the virtio header).
const BUF_LEN: usize = 2048;
/// Where `--allow-host PORT` makes the host's 127.0.0.1:PORT appear (QEMU `guestfwd`), also
/// known to the resolver as `host`.
pub const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);

type Card = VirtIONet<KeelHal, SomeTransport<'static>, QUEUE>;

/// The card as smoltcp sees it.
pub struct Nic {
    card: RefCell<Card>,
    counters: RefCell<Counters>,
}

// SAFETY: the card is only used under the NET lock, from whichever CPU holds it.
unsafe impl Send for Nic {}

pub struct Rx(Vec<u8>);

pub struct Tx<'a>(&'a Nic);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut card = self.0.card.borrow_mut();
        let mut buf = card.new_tx_buffer(len);
        let r = f(buf.packet_mut());
        let mut c = self.0.counters.borrow_mut();
        if card.send(buf).is_ok() {
            c.tx_packets += 1;
            c.tx_bytes += len as u64;
        }
        r
    }
}

impl Device for Nic {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _t: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        let packet = {
            let mut card = self.card.borrow_mut();
            if !card.can_recv() {
                return None;
            }
            let buf = card.receive().ok()?;
            let packet = buf.packet().to_vec();
            if card.recycle_rx_buffer(buf).is_err() {
                self.counters.borrow_mut().rx_dropped += 1;
            }
            packet
        };
        let mut c = self.counters.borrow_mut();
        c.rx_packets += 1;
        c.rx_bytes += packet.len() as u64;
        drop(c);
        Some((Rx(packet), Tx(self)))
    }

    fn transmit(&mut self, _t: smoltcp::time::Instant) -> Option<Tx<'_>> {
        self.card.borrow().can_send().then_some(Tx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(QUEUE / 2);
        caps
    }
}

/// Where the card's interrupt is routed (set once, before it is first unmasked).
static NET_IRQ: spin::Once<IrqSource> = spin::Once::new();

/// The card and the stack.
pub struct Net {
    pub stack: Stack,
    nic: Nic,
    /// Where the card is ("virtio-mmio at ..." / "PCI ...").
    pub place: String,
    pub irq: Option<IrqSource>,
}

impl Net {
    /// Processes received packets and sends what is due; quiets the card's interrupt.
    pub fn poll(&mut self) {
        // Acknowledge first, then drain: a packet arriving after the acknowledgement raises
        // the interrupt again. Sending (done while polling) interrupts too, so go round while
        // packets keep arriving.
        for _ in 0..16 {
            self.nic.card.borrow_mut().ack_interrupt();
            self.stack.poll(now_ms(), &mut self.nic);
            if !self.nic.card.borrow().can_recv() {
                break;
            }
        }
        if IRQ_MASKED.swap(false, Ordering::AcqRel) {
            // The I/O APIC latched any edge that came while masked and delivers it now.
            if let Some(src) = NET_IRQ.get() {
                crate::arch::cpu::set_device_irq_masked(*src, false);
            }
        }
        if self.stack.take_loopback_activity() {
            // Sockets moved on loopback, which no interrupt announces: whoever waits may proceed.
            task::wake_waiters(task::EVENT_NET);
        }
    }

    pub fn counters(&self) -> Counters {
        *self.nic.counters.borrow()
    }
}

static NET: Mutex<Option<Net>> = Mutex::new(None);
/// The interrupt handler could not quiet the card (the stack was in use) and masked it.
static IRQ_MASKED: AtomicBool = AtomicBool::new(false);
/// Interrupts taken from the card.
pub static INTERRUPTS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn now_ms() -> u64 {
    time::uptime_ns() / 1_000_000
}

/// Runs `f` on the network (None if there is no card). Waits for the lock by yielding, so a
/// preempted holder gets to finish.
pub fn with<R>(f: impl FnOnce(&mut Net) -> R) -> Option<R> {
    loop {
        if let Some(mut guard) = NET.try_lock() {
            return guard.as_mut().map(f);
        }
        task::yield_now();
    }
}

/// The card's interrupt: quiet the card, wake whoever waits for the network.
fn on_interrupt() {
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    let quieted = match NET.try_lock() {
        Some(mut guard) => match guard.as_mut() {
            Some(n) => {
                n.nic.card.borrow_mut().ack_interrupt();
                true
            }
            None => false,
        },
        None => false,
    };
    if !quieted {
        // The stack is in use (or not set up yet): mask the line until the next poll
        // acknowledges the card, or a level-triggered line would interrupt forever.
        IRQ_MASKED.store(true, Ordering::Release);
        if let Some(src) = NET_IRQ.get() {
            crate::arch::cpu::set_device_irq_masked(*src, true);
        }
    }
    task::wake_waiters(task::EVENT_NET);
}

/// Takes the first virtio-net transport: starts the card, the stack (DHCP), its interrupt and
/// the polling task.
pub fn init(transport: SomeTransport<'static>, place: String, irq: Option<IrqSource>) {
    let card = match Card::new(transport, BUF_LEN) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("virtio-net ({place}): {e:?}");
            return;
        }
    };
    let mac = card.mac_address();
    let mut nic = Nic { card: RefCell::new(card), counters: RefCell::new(Counters::default()) };
    let mut seed = [0u8; 8];
    crate::random::fill(&mut seed);
    let mut stack = Stack::new(&mut nic, Some(mac), now_ms(), u64::from_le_bytes(seed));
    stack.add_host("host", HOST_ADDR);
    stack.start_dhcp();
    // The stack is in place before the first interrupt can come.
    let routed = irq.filter(|&src| {
        NET_IRQ.call_once(|| src);
        crate::arch::cpu::route_device_irq(src, on_interrupt)
    });
    log::info!(
        "network: virtio-net {} ({place}), {}",
        mac.iter().map(|b| alloc::format!("{b:02x}")).collect::<Vec<_>>().join(":"),
        match routed {
            Some(IrqSource::Gsi(g)) => alloc::format!("interrupt: I/O APIC GSI {g}"),
            Some(IrqSource::PicLine(l)) => alloc::format!("interrupt: PIC line {l}"),
            None => String::from("no usable interrupt: polled every tick"),
        }
    );
    nic.card.borrow_mut().enable_interrupts();
    *NET.lock() = Some(Net { stack, nic, place, irq: routed });
}

/// Starts the polling task once tasks exist (if there is a card).
pub fn start() {
    if NET.lock().is_some() && task::spawn("net", alloc::boxed::Box::new(poller)).is_none() {
        log::error!("network: cannot start the polling task");
    }
}

/// The "net" task: polls whenever the card interrupts or a stack timer is due. It starts a
/// moment after the shell, so bringing the network up (DHCP) does not delay the prompt.
fn poller() -> i32 {
    task::sleep_ms(20);
    loop {
        let (delay, polled_by_tick) = with(|n| {
            n.poll();
            (n.stack.poll_delay_ms(now_ms()), n.irq.is_none())
        })
        .unwrap_or((Some(1000), true));
        let wait = match (delay, polled_by_tick) {
            (_, true) => 10,
            (Some(d), false) => d.clamp(1, 1000),
            (None, false) => 1000,
        };
        task::sleep_for(task::EVENT_NET, time::uptime_ns() + wait * 1_000_000);
    }
}

/// Why a wait ended without its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// Ctrl-C or kill.
    Interrupted,
    /// The deadline passed.
    TimedOut,
    /// There is no network card.
    NoCard,
}

/// Polls the network and asks `ready` until it gives a result, sleeping in between until the
/// card interrupts or a timer is due; gives up at `deadline_ms` (monotonic ms) or when `stop`
/// says so.
pub fn wait_for<R>(
    deadline_ms: u64,
    stop: &mut dyn FnMut() -> bool,
    mut ready: impl FnMut(&mut Net) -> Option<R>,
) -> Result<R, Waited> {
    loop {
        let (result, delay) = with(|n| {
            n.poll();
            let r = ready(n);
            (r, n.stack.poll_delay_ms(now_ms()))
        })
        .ok_or(Waited::NoCard)?;
        if let Some(r) = result {
            return Ok(r);
        }
        if stop() || task::killed() {
            return Err(Waited::Interrupted);
        }
        let now = now_ms();
        if now >= deadline_ms {
            return Err(Waited::TimedOut);
        }
        // Wake for the card, a stack timer, the deadline, or at least every 50 ms for Ctrl-C.
        let until = deadline_ms.min(now + delay.unwrap_or(50).clamp(1, 50));
        task::sleep_for(task::EVENT_NET | task::EVENT_INPUT, until * 1_000_000);
    }
}
