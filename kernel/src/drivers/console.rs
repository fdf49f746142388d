//! The screen console: the `keel-term` screen model shown in VGA text mode (BIOS machines,
//! `cargo xtask run --gui`) or drawn on the linear framebuffer the boot loader hands over (UEFI
//! GOP, which has no text mode), and the PS/2 keyboard feeding the same input queue as the
//! serial port. On machines with neither display (microvm) it stays off.

use core::sync::atomic::{AtomicBool, Ordering};

use keel_boot::Display;
use keel_term::pixels::{Format, Painter, Surface};
use keel_term::{Screen, COLS, ROWS};
use pc_keyboard::{layouts, DecodedKey, HandleControl, KeyCode, Keyboard, ScancodeSet1};
use spin::Mutex;
use x86_64::instructions::port::Port;

/// Physical (identity-mapped) address of VGA text memory.
const VGA_TEXT: u64 = 0xb8000;
/// BIOS data area byte holding the current video mode.
const BDA_VIDEO_MODE: u64 = 0x449;
/// Light grey on black.
const ATTR: u8 = 0x07;

static ENABLED: AtomicBool = AtomicBool::new(false);
static SCREEN: Mutex<Option<Screen>> = Mutex::new(None);
static KEYBOARD: Mutex<Option<Keyboard<layouts::Us104Key, ScancodeSet1>>> = Mutex::new(None);
/// The framebuffer and its painter, when the display is not in text mode.
static PIXELS: Mutex<Option<(Painter, &'static mut [u8])>> = Mutex::new(None);
/// What the console shows on, for the boot report.
static KIND: Mutex<&'static str> = Mutex::new("none");

/// Turns the screen console on: on the boot loader's framebuffer if it gave one, else in VGA
/// text mode if the firmware left the display in 80x25 text mode.
pub fn init(display: Option<Display>) {
    if let Some(Display::Framebuffer { addr, pitch, width, height, bpp, format }) = display {
        let surface = Surface {
            width: width as usize,
            height: height as usize,
            pitch: pitch as usize,
            bytes_per_pixel: usize::from(bpp / 8),
            format: Format { red: format.red, green: format.green, blue: format.blue },
        };
        let end = addr.checked_add(surface.len() as u64);
        if let (Some(painter), Some(end)) = (Painter::new(surface), end) {
            if addr >= 0x1000 && end <= crate::mm::memory::IDENTITY_LIMIT {
                // SAFETY: the loader's framebuffer: `len` bytes of device memory at `addr`,
                // identity-mapped (checked above), used by nothing else for the rest of the
                // kernel's life, so one 'static mutable slice over it is sound.
                let fb = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, surface.len()) };
                *PIXELS.lock() = Some((painter, fb));
                *KIND.lock() = "framebuffer";
                return enable();
            }
        }
    }
    // SAFETY: the BIOS data area is identity-mapped low memory; reading one byte is harmless
    // (it is zero where no BIOS set a mode).
    let mode = unsafe { core::ptr::read_volatile(BDA_VIDEO_MODE as *const u8) };
    if display == Some(Display::Text) || mode == 3 || mode == 7 {
        *KIND.lock() = "VGA text";
        enable();
    }
}

/// Logs what the console shows on (once logging is set up).
pub fn report() {
    let (w, h) = match &*PIXELS.lock() {
        Some((p, _)) => p.cell_size(),
        None => (0, 0),
    };
    match *KIND.lock() {
        "none" => {}
        "framebuffer" => log::info!("screen: framebuffer console, {COLS}x{ROWS} cells of {w}x{h} pixels"),
        kind => log::info!("screen: {kind} console"),
    }
}

fn enable() {
    *SCREEN.lock() = Some(Screen::new());
    *KEYBOARD.lock() = Some(Keyboard::new(ScancodeSet1::new(), layouts::Us104Key, HandleControl::MapLettersToUnicode));
    ENABLED.store(true, Ordering::SeqCst);
    write(b"\x1b[2J\x1b[H");
}

/// True when the VGA console is in use.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Shows output on the screen (interrupts must be off: called under the serial lock).
pub fn write(data: &[u8]) {
    if !enabled() {
        return;
    }
    let mut guard = SCREEN.lock();
    let Some(screen) = guard.as_mut() else { return };
    screen.write(data);
    if !screen.take_dirty() {
        return;
    }
    if let Some((painter, fb)) = PIXELS.lock().as_mut() {
        painter.paint(screen, fb);
        return;
    }
    for (r, row) in screen.cells().iter().enumerate() {
        for (c, &ch) in row.iter().enumerate() {
            let cell = u16::from(ch) | (u16::from(ATTR) << 8);
            // SAFETY: VGA text memory is 80x25 cells of u16 at 0xb8000, identity-mapped;
            // (r, c) is within bounds.
            unsafe { core::ptr::write_volatile((VGA_TEXT as *mut u16).add(r * COLS + c), cell) };
        }
    }
    let (row, col) = screen.cursor();
    let pos = (row.min(ROWS - 1) * COLS + col.min(COLS - 1)) as u16;
    let mut index: Port<u8> = Port::new(0x3d4);
    let mut data: Port<u8> = Port::new(0x3d5);
    // SAFETY: CRTC cursor-location registers 0x0e/0x0f of a VGA in colour text mode.
    unsafe {
        index.write(0x0f);
        data.write((pos & 0xff) as u8);
        index.write(0x0e);
        data.write((pos >> 8) as u8);
    }
}

/// Called from the keyboard interrupt: turns scancodes into terminal bytes.
pub fn on_keyboard_interrupt() {
    let mut port: Port<u8> = Port::new(0x60);
    // SAFETY: reading the PS/2 data port acknowledges the byte that raised IRQ1.
    let scancode = unsafe { port.read() };
    let mut guard = KEYBOARD.lock();
    let Some(kb) = guard.as_mut() else { return };
    let Ok(Some(event)) = kb.add_byte(scancode) else { return };
    let Some(key) = kb.process_keyevent(event) else { return };
    let mut buf = [0u8; 4];
    let bytes: &[u8] = match key {
        DecodedKey::Unicode('\n') => b"\r",
        DecodedKey::Unicode(c) => c.encode_utf8(&mut buf).as_bytes(),
        DecodedKey::RawKey(k) => match k {
            KeyCode::ArrowUp => b"\x1b[A",
            KeyCode::ArrowDown => b"\x1b[B",
            KeyCode::ArrowRight => b"\x1b[C",
            KeyCode::ArrowLeft => b"\x1b[D",
            KeyCode::Home => b"\x1b[H",
            KeyCode::End => b"\x1b[F",
            KeyCode::Delete => b"\x1b[3~",
            _ => return,
        },
    };
    crate::drivers::serial::push_input(bytes);
}
