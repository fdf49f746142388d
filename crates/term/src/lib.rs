//! A text screen that understands the subset of VT100/ANSI the shell emits (`\r`, `\n`, `\b`,
//! tab, `ESC[K`, `ESC[nA/B/C/D`, `ESC[H`, `ESC[row;colH`, `ESC[2J`, colours ignored), decoding
//! UTF-8 into code page 437 glyphs. The kernel copies [`Screen::cells`] to VGA text memory.
#![no_std]
#![forbid(unsafe_code)]

pub mod pixels;

/// Screen width in characters.
pub const COLS: usize = 80;
/// Screen height in characters.
pub const ROWS: usize = 25;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Normal,
    Esc,
    Csi,
}

/// The screen contents and cursor.
pub struct Screen {
    cells: [[u8; COLS]; ROWS],
    row: usize,
    col: usize,
    state: State,
    params: [u16; 4],
    nparams: usize,
    utf8: [u8; 4],
    utf8_len: usize,
    utf8_need: usize,
    /// Set when anything changed since the last [`Screen::take_dirty`].
    dirty: bool,
}

impl Default for Screen {
    fn default() -> Self {
        Self::new()
    }
}

/// Code page 437's upper half (bytes 0x80..=0xff), in order.
pub(crate) const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// Maps a Unicode character to a code page 437 byte (`?` when there is none).
pub fn cp437(c: char) -> u8 {
    if (' '..='~').contains(&c) {
        return c as u8;
    }
    match CP437_HIGH.chars().position(|h| h == c) {
        Some(i) => 0x80 + i as u8,
        None => match c {
            '✓' => 0xfb,
            '…' => b'.',
            _ => b'?',
        },
    }
}

impl Screen {
    /// A blank screen with the cursor at the top left.
    pub fn new() -> Self {
        Screen {
            cells: [[b' '; COLS]; ROWS],
            row: 0,
            col: 0,
            state: State::Normal,
            params: [0; 4],
            nparams: 0,
            utf8: [0; 4],
            utf8_len: 0,
            utf8_need: 0,
            dirty: true,
        }
    }

    /// The characters (code page 437), row by row.
    pub fn cells(&self) -> &[[u8; COLS]; ROWS] {
        &self.cells
    }

    /// Cursor (row, column).
    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.col)
    }

    /// True if the screen changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        core::mem::replace(&mut self.dirty, false)
    }

    /// A row as text (for tests).
    pub fn row_text(&self, r: usize) -> &str {
        core::str::from_utf8(&self.cells[r]).unwrap_or("").trim_end()
    }

    /// Processes output bytes.
    pub fn write(&mut self, data: &[u8]) {
        for &b in data {
            self.byte(b);
        }
        self.dirty = true;
    }

    fn byte(&mut self, b: u8) {
        match self.state {
            State::Esc => {
                self.state = if b == b'[' { State::Csi } else { State::Normal };
                self.params = [0; 4];
                self.nparams = 0;
            }
            State::Csi => match b {
                b'0'..=b'9' => {
                    if self.nparams == 0 {
                        self.nparams = 1;
                    }
                    let p = &mut self.params[self.nparams - 1];
                    *p = p.saturating_mul(10).saturating_add(u16::from(b - b'0'));
                }
                b';' => {
                    if self.nparams == 0 {
                        self.nparams = 1;
                    }
                    if self.nparams < self.params.len() {
                        self.nparams += 1;
                    }
                }
                b'?' => {}
                _ => {
                    self.state = State::Normal;
                    self.csi(b);
                }
            },
            State::Normal => {
                if self.utf8_need > 0 {
                    if b & 0xc0 == 0x80 {
                        self.utf8[self.utf8_len] = b;
                        self.utf8_len += 1;
                        if self.utf8_len == self.utf8_need {
                            let c = core::str::from_utf8(&self.utf8[..self.utf8_len])
                                .ok()
                                .and_then(|s| s.chars().next())
                                .unwrap_or('?');
                            self.utf8_need = 0;
                            self.put(cp437(c));
                        }
                        return;
                    }
                    self.utf8_need = 0;
                    self.put(b'?');
                }
                match b {
                    0x1b => self.state = State::Esc,
                    b'\r' => self.col = 0,
                    b'\n' => self.newline(),
                    0x08 => self.col = self.col.saturating_sub(1),
                    b'\t' => {
                        let next = (self.col / 8 + 1) * 8;
                        while self.col < next.min(COLS) {
                            self.put(b' ');
                        }
                    }
                    0x20..=0x7e => self.put(b),
                    0xc0..=0xf7 => {
                        self.utf8[0] = b;
                        self.utf8_len = 1;
                        self.utf8_need = if b >= 0xf0 {
                            4
                        } else if b >= 0xe0 {
                            3
                        } else {
                            2
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    fn param(&self, i: usize, default: u16) -> usize {
        let v = if i < self.nparams { self.params[i] } else { 0 };
        usize::from(if v == 0 { default } else { v })
    }

    fn csi(&mut self, cmd: u8) {
        match cmd {
            b'A' => self.row = self.row.saturating_sub(self.param(0, 1)),
            b'B' => self.row = (self.row + self.param(0, 1)).min(ROWS - 1),
            b'C' => self.col = (self.col + self.param(0, 1)).min(COLS - 1),
            b'D' => self.col = self.col.saturating_sub(self.param(0, 1)),
            b'H' | b'f' => {
                self.row = (self.param(0, 1) - 1).min(ROWS - 1);
                self.col = (self.param(1, 1) - 1).min(COLS - 1);
            }
            b'J' => match self.param(0, 0) {
                2 | 3 => self.cells = [[b' '; COLS]; ROWS],
                _ => {
                    self.clear_line_from(self.row, self.col);
                    for r in self.row + 1..ROWS {
                        self.cells[r] = [b' '; COLS];
                    }
                }
            },
            b'K' => match self.param(0, 0) {
                1 => self.cells[self.row][..=self.col.min(COLS - 1)].fill(b' '),
                2 => self.cells[self.row] = [b' '; COLS],
                _ => self.clear_line_from(self.row, self.col),
            },
            _ => {}
        }
    }

    fn clear_line_from(&mut self, row: usize, col: usize) {
        if col < COLS {
            self.cells[row][col..].fill(b' ');
        }
    }

    fn put(&mut self, b: u8) {
        if self.col >= COLS {
            self.newline();
            self.col = 0;
        }
        self.cells[self.row][self.col] = b;
        self.col += 1;
    }

    fn newline(&mut self) {
        if self.row + 1 < ROWS {
            self.row += 1;
        } else {
            self.cells.copy_within(1.., 0);
            self.cells[ROWS - 1] = [b' '; COLS];
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn text_newlines_and_scrolling() {
        let mut s = Screen::new();
        s.write(b"hello\r\nworld");
        assert_eq!(s.row_text(0), "hello");
        assert_eq!(s.row_text(1), "world");
        assert_eq!(s.cursor(), (1, 5));
        for i in 0..30 {
            s.write(std::format!("\r\nline {i}").as_bytes());
        }
        assert_eq!(s.cursor().0, ROWS - 1);
        assert_eq!(s.row_text(ROWS - 1), "line 29");
        assert_eq!(s.row_text(0), "line 5");
    }

    #[test]
    fn line_editor_sequences() {
        let mut s = Screen::new();
        // What the editor sends when inserting in the middle: redraw, clear to end, move back.
        s.write(b"keel> ac\x1b[D");
        s.write(b"\rkeel> abc\x1b[K\x1b[1D");
        assert_eq!(s.row_text(0), "keel> abc");
        assert_eq!(s.cursor(), (0, 8));
        // Backspace at the end.
        s.write(b"\x1b[C\x08\x1b[K");
        assert_eq!(s.row_text(0), "keel> ab");
        // Clear screen and home.
        s.write(b"\x1b[2J\x1b[H$ ");
        assert_eq!(s.row_text(0), "$");
        assert_eq!(s.cursor(), (0, 2));
        s.write(b"\x1b[3;5Hx");
        assert_eq!(s.row_text(2), "    x");
    }

    #[test]
    fn utf8_becomes_cp437_and_long_lines_wrap() {
        let mut s = Screen::new();
        s.write("é✓€".as_bytes());
        assert_eq!(s.cells()[0][..3], [0x82, 0xfb, b'?']);
        let mut t = Screen::new();
        t.write(&[b'x'; 85]);
        assert_eq!(t.cursor(), (1, 5));
        // Colour sequences are ignored.
        t.write(b"\x1b[1;31mred\x1b[0m");
        assert_eq!(&t.cells()[1][5..8], b"red");
    }
}
