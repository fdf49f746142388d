//! The same screen on a linear framebuffer (UEFI GOP has no text mode): each cell is drawn
//! from an 8x8 glyph (`font8x8`, public-domain glyphs) doubled in height, scaled up to fill as
//! much of the display as whole multiples allow, centred. Only cells that changed since the
//! last paint are redrawn, so typing costs a few cells, not the whole screen.

use font8x8::{UnicodeFonts, BASIC_FONTS, BLOCK_FONTS, BOX_FONTS, GREEK_FONTS, LATIN_FONTS, MISC_FONTS};

use crate::{Screen, COLS, ROWS};

/// The character a code page 437 byte stands for.
pub fn char_of(byte: u8) -> char {
    match byte {
        0x20..=0x7e => byte as char,
        0x80..=0xff => crate::CP437_HIGH.chars().nth(usize::from(byte - 0x80)).unwrap_or('?'),
        _ => ' ',
    }
}

/// The 8x8 glyph of a code page 437 byte (bit 0 of each row is the leftmost pixel); a box
/// for characters the font lacks.
pub fn glyph(byte: u8) -> [u8; 8] {
    let c = char_of(byte);
    let fonts: [&dyn UnicodeFonts; 6] =
        [&BASIC_FONTS, &BOX_FONTS, &BLOCK_FONTS, &LATIN_FONTS, &GREEK_FONTS, &MISC_FONTS];
    fonts.iter().find_map(|f| f.get(c)).unwrap_or([0x00, 0x7e, 0x42, 0x42, 0x42, 0x42, 0x7e, 0x00])
}

/// How pixels are laid out: bit position and width of red, green and blue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub red: (u8, u8),
    pub green: (u8, u8),
    pub blue: (u8, u8),
}

impl Format {
    /// Packs an 8-bit-per-channel colour.
    pub fn pack(&self, r: u8, g: u8, b: u8) -> u32 {
        let chan = |v: u8, (pos, size): (u8, u8)| -> u32 {
            let size = size.min(8);
            if size == 0 || pos >= 32 {
                return 0;
            }
            (u32::from(v) >> (8 - size)) << pos
        };
        chan(r, self.red) | chan(g, self.green) | chan(b, self.blue)
    }
}

/// A framebuffer's geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Surface {
    pub width: usize,
    pub height: usize,
    /// Bytes per line.
    pub pitch: usize,
    /// 3 or 4.
    pub bytes_per_pixel: usize,
    pub format: Format,
}

impl Surface {
    /// Bytes the framebuffer spans.
    pub fn len(&self) -> usize {
        self.pitch * self.height
    }

    /// True for a zero-sized surface.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Draws a [`Screen`] on a framebuffer, remembering what is shown.
pub struct Painter {
    surface: Surface,
    scale: usize,
    left: usize,
    top: usize,
    fg: u32,
    bg: u32,
    shown: [[u8; COLS]; ROWS],
    cursor: Option<(usize, usize)>,
    cleared: bool,
}

/// Pixels of one cell at scale 1.
pub const CELL_W: usize = 8;
pub const CELL_H: usize = 16;

impl Painter {
    /// A painter for `surface`, or None if it cannot hold 80x25 cells of 8x16 pixels or its
    /// pixel size is unsupported.
    pub fn new(surface: Surface) -> Option<Painter> {
        let (w, h) = (COLS * CELL_W, ROWS * CELL_H);
        if !(surface.bytes_per_pixel == 3 || surface.bytes_per_pixel == 4)
            || surface.width < w
            || surface.height < h
            || surface.pitch < surface.width * surface.bytes_per_pixel
        {
            return None;
        }
        let scale = (surface.width / w).min(surface.height / h).max(1);
        Some(Painter {
            surface,
            scale,
            left: (surface.width - w * scale) / 2,
            top: (surface.height - h * scale) / 2,
            fg: surface.format.pack(0xc0, 0xc0, 0xc0),
            bg: surface.format.pack(0, 0, 0),
            shown: [[0; COLS]; ROWS],
            cursor: None,
            cleared: false,
        })
    }

    /// Pixel position of the top-left cell's corner.
    pub fn origin(&self) -> (usize, usize) {
        (self.left, self.top)
    }

    /// Columns and rows of pixels one cell takes.
    pub fn cell_size(&self) -> (usize, usize) {
        (CELL_W * self.scale, CELL_H * self.scale)
    }

    fn put(&self, fb: &mut [u8], x: usize, y: usize, colour: u32) {
        let bpp = self.surface.bytes_per_pixel;
        let at = y * self.surface.pitch + x * bpp;
        if let Some(px) = fb.get_mut(at..at + bpp) {
            px.copy_from_slice(&colour.to_le_bytes()[..bpp]);
        }
    }

    fn draw_cell(&self, fb: &mut [u8], row: usize, col: usize, byte: u8, cursor: bool) {
        let g = glyph(byte);
        let (cw, ch) = self.cell_size();
        let (x0, y0) = (self.left + col * cw, self.top + row * ch);
        for py in 0..ch {
            let bits = g[py / (2 * self.scale)];
            let underline = cursor && py >= ch - 2 * self.scale;
            for px in 0..cw {
                let on = underline || bits & (1 << (px / self.scale)) != 0;
                self.put(fb, x0 + px, y0 + py, if on { self.fg } else { self.bg });
            }
        }
    }

    /// Brings `fb` up to date with `screen`: cells that changed and the cursor's old and new
    /// cells. Returns how many cells were drawn.
    pub fn paint(&mut self, screen: &Screen, fb: &mut [u8]) -> usize {
        if !self.cleared {
            let bg = self.bg;
            for y in 0..self.surface.height {
                for x in 0..self.surface.width {
                    self.put(fb, x, y, bg);
                }
            }
            self.shown = [[b' '; COLS]; ROWS];
            self.cleared = true;
        }
        let (r, c) = screen.cursor();
        let cursor = Some((r.min(ROWS - 1), c.min(COLS - 1)));
        let mut drawn = 0;
        for (row, line) in screen.cells().iter().enumerate() {
            for (col, &byte) in line.iter().enumerate() {
                let at = Some((row, col));
                let cursor_moved = (self.cursor == at) != (cursor == at);
                if self.shown[row][col] != byte || cursor_moved {
                    self.draw_cell(fb, row, col, byte, cursor == at);
                    self.shown[row][col] = byte;
                    drawn += 1;
                }
            }
        }
        self.cursor = cursor;
        drawn
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;

    use super::*;

    const BGRX: Format = Format { red: (16, 8), green: (8, 8), blue: (0, 8) };

    fn surface(width: usize, height: usize) -> Surface {
        Surface { width, height, pitch: width * 4 + 64, bytes_per_pixel: 4, format: BGRX }
    }

    #[test]
    fn every_cp437_byte_round_trips_and_has_a_glyph() {
        for b in 0x20..=0xffu8 {
            if b == 0x7f {
                continue;
            }
            assert_eq!(crate::cp437(char_of(b)), b, "byte {b:#x}");
        }
        assert_eq!(glyph(b' '), [0; 8]);
        assert_ne!(glyph(b'A'), [0; 8]);
        assert_ne!(glyph(0xc4), [0; 8], "box drawing ─");
    }

    #[test]
    fn colours_pack_into_the_framebuffer_layout() {
        assert_eq!(BGRX.pack(0x12, 0x34, 0x56), 0x0012_3456);
        let rgb565 = Format { red: (11, 5), green: (5, 6), blue: (0, 5) };
        assert_eq!(rgb565.pack(0xff, 0xff, 0xff), 0xffff);
    }

    #[test]
    fn draws_text_where_the_screen_has_it_and_only_what_changed() {
        let s = surface(1280, 800);
        let mut fb = vec![0xaau8; s.len()];
        let mut p = Painter::new(s).unwrap();
        assert_eq!(p.cell_size(), (16, 32));
        let mut screen = Screen::new();
        screen.write(b"A");
        // First paint: the display is cleared, then the 'A' and the cursor's cell are drawn.
        assert_eq!(p.paint(&screen, &mut fb), 2);
        assert!(fb[(s.height - 1) * s.pitch..][..s.width * 4].iter().all(|&b| b == 0));
        // The 'A' glyph's pixels are lit in the top-left cell.
        let g = glyph(b'A');
        let (cw, ch) = p.cell_size();
        for py in 0..ch {
            for px in 0..cw {
                let at = py * s.pitch + px * 4;
                let lit = fb[at..at + 4] != [0, 0, 0, 0];
                assert_eq!(lit, g[py / 4] & (1 << (px / 2)) != 0, "pixel {px},{py}");
            }
        }
        // The padding at the end of each line is never touched.
        assert_eq!(fb[s.width * 4], 0xaa);
        // Typing one character redraws it and the cursor's old and new cells.
        screen.write(b"B");
        assert_eq!(p.paint(&screen, &mut fb), 2);
        assert_eq!(p.paint(&screen, &mut fb), 0);
    }

    #[test]
    fn small_or_odd_framebuffers_are_refused() {
        assert!(Painter::new(surface(320, 200)).is_none());
        let mut s = surface(800, 600);
        s.bytes_per_pixel = 2;
        assert!(Painter::new(s).is_none());
        // 800x600: scale 1, centred.
        let p = Painter::new(surface(800, 600)).unwrap();
        assert_eq!(p.cell_size(), (8, 16));
        assert_eq!(p.origin(), (80, 100));
    }
}
