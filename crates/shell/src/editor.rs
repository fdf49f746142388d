//! A line editor driven by terminal bytes (VT100/ANSI as sent by terminals and by `cargo xtask run`).
//!
//! Feed it one byte at a time; it returns an [`Event`] and appends the bytes that update the screen
//! to an output string. It never touches a device, so it is tested on the host byte by byte.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// What a key press produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing finished yet.
    Pending,
    /// Enter: the finished line.
    Line(String),
    /// Ctrl-C: the line was abandoned.
    Interrupt,
    /// Ctrl-D on an empty line.
    Eof,
}

/// Offers completions for the word under the cursor.
pub trait Completer {
    /// Candidates replacing `word`; `first` is true when the word is the command name.
    /// A candidate ending in `/` is a directory (no space is added after it).
    fn complete(&self, word: &str, first: bool) -> Vec<String>;
}

/// No completions at all.
pub struct NoCompletion;

impl Completer for NoCompletion {
    fn complete(&self, _: &str, _: bool) -> Vec<String> {
        Vec::new()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Esc {
    None,
    /// After ESC.
    Start,
    /// After ESC [ (with parameter digits collected).
    Csi(u16),
    /// After ESC O.
    Ss3,
}

/// Maximum number of lines kept in the history.
pub const HISTORY_MAX: usize = 500;
/// Longest line, in characters (as Linux's terminal line discipline: 4096).
pub const MAX_LINE: usize = 4096;

/// The line editor state.
pub struct Editor {
    prompt: String,
    buf: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing history, and the line being edited before browsing.
    hist_pos: Option<usize>,
    saved: Vec<char>,
    esc: Esc,
    utf8: Vec<u8>,
    last_cr: bool,
}

impl Editor {
    /// A new editor showing `prompt`.
    pub fn new(prompt: &str) -> Self {
        Self {
            prompt: String::from(prompt),
            buf: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            hist_pos: None,
            saved: Vec::new(),
            esc: Esc::None,
            utf8: Vec::new(),
            last_cr: false,
        }
    }

    /// Changes the prompt (takes effect at the next redraw).
    pub fn set_prompt(&mut self, prompt: &str) {
        self.prompt = String::from(prompt);
    }

    /// Starts a new line: writes the prompt.
    pub fn start(&mut self, out: &mut String) {
        self.buf.clear();
        self.cursor = 0;
        self.hist_pos = None;
        out.push_str(&self.prompt);
    }

    /// Redraws the prompt and the line being edited (after other output interrupted it).
    pub fn redraw(&self, out: &mut String) {
        self.refresh(out);
    }

    /// The line as currently edited.
    pub fn line(&self) -> String {
        self.buf.iter().collect()
    }

    /// Cursor position in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The history, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Adds a line to the history (skipping blanks and repeats of the last entry).
    pub fn add_history(&mut self, line: &str) {
        let line = line.trim_end();
        if line.trim().is_empty() || self.history.last().is_some_and(|l| l == line) {
            return;
        }
        if self.history.len() == HISTORY_MAX {
            self.history.remove(0);
        }
        self.history.push(String::from(line));
    }

    /// Processes one input byte.
    pub fn feed(&mut self, byte: u8, out: &mut String, completer: &dyn Completer) -> Event {
        let was_cr = core::mem::replace(&mut self.last_cr, false);
        match self.esc {
            Esc::None => {}
            Esc::Start => {
                self.esc = Esc::None;
                match byte {
                    b'[' => self.esc = Esc::Csi(0),
                    b'O' => self.esc = Esc::Ss3,
                    b'b' => self.word_left(out),
                    b'f' => self.word_right(out),
                    _ => {}
                }
                return Event::Pending;
            }
            Esc::Csi(n) => {
                if byte.is_ascii_digit() {
                    self.esc = Esc::Csi(n.saturating_mul(10).saturating_add(u16::from(byte - b'0')));
                    return Event::Pending;
                }
                if byte == b';' {
                    // Modifier parameters (e.g. ESC [ 1 ; 5 C): keep the first number only.
                    self.esc = Esc::Csi(n | 0x8000);
                    return Event::Pending;
                }
                self.esc = Esc::None;
                let n = n & 0x7fff;
                match (byte, n) {
                    (b'A', _) => self.history_prev(out),
                    (b'B', _) => self.history_next(out),
                    (b'C', _) => self.right(out),
                    (b'D', _) => self.left(out),
                    (b'H', _) | (b'~', 1 | 7) => self.home(out),
                    (b'F', _) | (b'~', 4 | 8) => self.end(out),
                    (b'~', 3) => self.delete(out),
                    _ => {}
                }
                return Event::Pending;
            }
            Esc::Ss3 => {
                self.esc = Esc::None;
                match byte {
                    b'A' => self.history_prev(out),
                    b'B' => self.history_next(out),
                    b'C' => self.right(out),
                    b'D' => self.left(out),
                    b'H' => self.home(out),
                    b'F' => self.end(out),
                    _ => {}
                }
                return Event::Pending;
            }
        }
        match byte {
            0x1b => self.esc = Esc::Start,
            b'\r' => {
                self.last_cr = true;
                return self.submit(out);
            }
            b'\n' => {
                if !was_cr {
                    return self.submit(out);
                }
            }
            0x01 => self.home(out),
            0x02 => self.left(out),
            0x03 => {
                out.push_str("^C\r\n");
                self.buf.clear();
                self.cursor = 0;
                self.hist_pos = None;
                return Event::Interrupt;
            }
            0x04 => {
                if self.buf.is_empty() {
                    return Event::Eof;
                }
                self.delete(out);
            }
            0x05 => self.end(out),
            0x06 => self.right(out),
            0x08 | 0x7f => self.backspace(out),
            b'\t' => self.complete(out, completer),
            0x0b => {
                self.buf.truncate(self.cursor);
                out.push_str("\x1b[K");
            }
            0x0c => {
                out.push_str("\x1b[2J\x1b[H");
                self.refresh(out);
            }
            0x15 => {
                self.buf.drain(..self.cursor);
                self.cursor = 0;
                self.refresh(out);
            }
            0x17 => self.kill_word(out),
            0x00..=0x1f => {}
            0x20..=0x7e => self.insert(char::from(byte), out),
            _ => {
                // UTF-8 sequence: collect until a whole character is there.
                self.utf8.push(byte);
                match core::str::from_utf8(&self.utf8) {
                    Ok(s) => {
                        let chars: Vec<char> = s.chars().collect();
                        self.utf8.clear();
                        for c in chars {
                            self.insert(c, out);
                        }
                    }
                    Err(e) if e.error_len().is_some() || self.utf8.len() >= 4 => self.utf8.clear(),
                    Err(_) => {}
                }
            }
        }
        Event::Pending
    }

    fn submit(&mut self, out: &mut String) -> Event {
        out.push_str("\r\n");
        let line = self.line();
        self.buf.clear();
        self.cursor = 0;
        self.hist_pos = None;
        Event::Line(line)
    }

    /// Rewrites the whole line and puts the cursor back where it belongs.
    fn refresh(&self, out: &mut String) {
        out.push('\r');
        out.push_str(&self.prompt);
        out.extend(self.buf.iter());
        out.push_str("\x1b[K");
        let back = self.buf.len() - self.cursor;
        if back > 0 {
            let _ = write!(out, "\x1b[{back}D");
        }
    }

    fn insert(&mut self, c: char, out: &mut String) {
        if self.buf.len() >= MAX_LINE {
            // Full (as a Linux terminal line): ring the bell; every key would redraw 4 KB.
            out.push('\x07');
            return;
        }
        self.buf.insert(self.cursor, c);
        self.cursor += 1;
        if self.cursor == self.buf.len() {
            out.push(c);
        } else {
            self.refresh(out);
        }
    }

    fn left(&mut self, out: &mut String) {
        if self.cursor > 0 {
            self.cursor -= 1;
            out.push_str("\x1b[D");
        }
    }

    fn right(&mut self, out: &mut String) {
        if self.cursor < self.buf.len() {
            self.cursor += 1;
            out.push_str("\x1b[C");
        }
    }

    fn home(&mut self, out: &mut String) {
        self.cursor = 0;
        self.refresh(out);
    }

    fn end(&mut self, out: &mut String) {
        self.cursor = self.buf.len();
        self.refresh(out);
    }

    fn word_left(&mut self, out: &mut String) {
        while self.cursor > 0 && self.buf[self.cursor - 1] == ' ' {
            self.cursor -= 1;
        }
        while self.cursor > 0 && self.buf[self.cursor - 1] != ' ' {
            self.cursor -= 1;
        }
        self.refresh(out);
    }

    fn word_right(&mut self, out: &mut String) {
        while self.cursor < self.buf.len() && self.buf[self.cursor] == ' ' {
            self.cursor += 1;
        }
        while self.cursor < self.buf.len() && self.buf[self.cursor] != ' ' {
            self.cursor += 1;
        }
        self.refresh(out);
    }

    fn backspace(&mut self, out: &mut String) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        self.buf.remove(self.cursor);
        if self.cursor == self.buf.len() {
            out.push_str("\x08\x1b[K");
        } else {
            self.refresh(out);
        }
    }

    fn delete(&mut self, out: &mut String) {
        if self.cursor < self.buf.len() {
            self.buf.remove(self.cursor);
            self.refresh(out);
        }
    }

    fn kill_word(&mut self, out: &mut String) {
        let end = self.cursor;
        while self.cursor > 0 && self.buf[self.cursor - 1] == ' ' {
            self.cursor -= 1;
        }
        while self.cursor > 0 && self.buf[self.cursor - 1] != ' ' {
            self.cursor -= 1;
        }
        self.buf.drain(self.cursor..end);
        self.refresh(out);
    }

    fn set_line(&mut self, chars: Vec<char>, out: &mut String) {
        self.buf = chars;
        self.cursor = self.buf.len();
        self.refresh(out);
    }

    fn history_prev(&mut self, out: &mut String) {
        let pos = match self.hist_pos {
            None if self.history.is_empty() => return,
            None => {
                self.saved = self.buf.clone();
                self.history.len() - 1
            }
            Some(0) => return,
            Some(p) => p - 1,
        };
        self.hist_pos = Some(pos);
        let chars = self.history[pos].chars().collect();
        self.set_line(chars, out);
    }

    fn history_next(&mut self, out: &mut String) {
        let Some(pos) = self.hist_pos else { return };
        if pos + 1 < self.history.len() {
            self.hist_pos = Some(pos + 1);
            let chars = self.history[pos + 1].chars().collect();
            self.set_line(chars, out);
        } else {
            self.hist_pos = None;
            let saved = core::mem::take(&mut self.saved);
            self.set_line(saved, out);
        }
    }

    fn complete(&mut self, out: &mut String, completer: &dyn Completer) {
        let start = self.buf[..self.cursor].iter().rposition(|c| *c == ' ').map_or(0, |p| p + 1);
        let word: String = self.buf[start..self.cursor].iter().collect();
        let first = self.buf[..start].iter().all(|c| *c == ' ');
        let mut cands = completer.complete(&word, first);
        cands.sort();
        cands.dedup();
        let replacement = match cands.len() {
            0 => return,
            1 => {
                let mut c = cands[0].clone();
                if !c.ends_with('/') {
                    c.push(' ');
                }
                c
            }
            _ => {
                let prefix = common_prefix(&cands);
                if prefix.chars().count() <= word.chars().count() {
                    // Nothing more to add: list the choices and redraw.
                    out.push_str("\r\n");
                    for (i, c) in cands.iter().enumerate() {
                        if i > 0 {
                            out.push_str("  ");
                        }
                        let shown = c.trim_end_matches('/').rsplit('/').next().unwrap_or(c);
                        out.push_str(shown);
                        if c.ends_with('/') {
                            out.push('/');
                        }
                    }
                    out.push_str("\r\n");
                    self.refresh(out);
                    return;
                }
                prefix
            }
        };
        let tail: Vec<char> = self.buf.drain(start..).collect();
        let after = &tail[self.cursor - start..];
        self.buf.extend(replacement.chars());
        self.cursor = self.buf.len();
        self.buf.extend(after.iter());
        self.refresh(out);
    }
}

fn common_prefix(words: &[String]) -> String {
    let Some(first) = words.first() else {
        return String::new();
    };
    let mut n = first.len();
    for w in &words[1..] {
        n = n.min(first.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count());
    }
    while !first.is_char_boundary(n) {
        n -= 1;
    }
    String::from(&first[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    struct Words(Vec<&'static str>);

    impl Completer for Words {
        fn complete(&self, word: &str, _first: bool) -> Vec<String> {
            self.0.iter().filter(|w| w.starts_with(word)).map(|w| w.to_string()).collect()
        }
    }

    fn run(ed: &mut Editor, input: &[u8]) -> (Vec<Event>, String) {
        let mut out = String::new();
        let mut evs = Vec::new();
        let c = Words(vec!["echo", "exit", "/extra_files/", "/extra_files/wasm/"]);
        for &b in input {
            let e = ed.feed(b, &mut out, &c);
            if e != Event::Pending {
                evs.push(e);
            }
        }
        (evs, out)
    }

    fn line(input: &[u8]) -> String {
        let mut ed = Editor::new("> ");
        let (evs, _) = run(&mut ed, input);
        match evs.last() {
            Some(Event::Line(l)) => l.clone(),
            other => panic!("no line: {other:?}"),
        }
    }

    #[test]
    fn plain_typing_echoes_and_submits() {
        let mut ed = Editor::new("> ");
        let (evs, out) = run(&mut ed, b"echo hi\r\n");
        assert_eq!(evs, vec![Event::Line("echo hi".into())]);
        assert_eq!(out, "echo hi\r\n");
        // LF alone also submits; CR LF submits once.
        let (evs, _) = run(&mut ed, b"a\nb\r\nc\r");
        assert_eq!(evs.len(), 3);
    }

    #[test]
    fn lines_stop_at_the_limit_with_a_bell() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\x1b[Dy\r");
        let mut ed = Editor::new("> ");
        let (evs, out) = run(&mut ed, &input);
        assert_eq!(evs, vec![Event::Line("x".repeat(MAX_LINE))]);
        assert_eq!(out.matches('\x07').count(), 11, "one bell per refused key");
    }

    #[test]
    fn cursor_movement_and_insertion_in_the_middle() {
        assert_eq!(line(b"ac\x1b[Db\r"), "abc");
        assert_eq!(line(b"bc\x01a\x05d\r"), "abcd");
        assert_eq!(line(b"bc\x1b[Ha\x1b[Fd\r"), "abcd");
        assert_eq!(line(b"bc\x1b[1~a\x1b[4~d\r"), "abcd");
        assert_eq!(line(b"bc\x1bOHa\x1bOFd\r"), "abcd");
        assert_eq!(line(b"ac\x02b\x06d\r"), "abcd");
        // Moving past either end is harmless.
        assert_eq!(line(b"\x1b[D\x1b[Dab\x1b[C\x1b[Cc\r"), "abc");
    }

    #[test]
    fn deleting() {
        assert_eq!(line(b"abcd\x7f\x7f\r"), "ab");
        assert_eq!(line(b"abcd\x08\r"), "abc");
        assert_eq!(line(b"abcd\x01\x1b[3~\r"), "bcd");
        assert_eq!(line(b"abcd\x01\x04\r"), "bcd");
        assert_eq!(line(b"abcd\x1b[D\x1b[D\x0b\r"), "ab");
        assert_eq!(line(b"abcd\x1b[D\x1b[D\x15\r"), "cd");
        assert_eq!(line(b"echo foo bar\x17\r"), "echo foo ");
        assert_eq!(line(b"echo foo bar  \x17\x17\r"), "echo ");
        assert_eq!(line(b"\x7f\x7fx\r"), "x");
    }

    #[test]
    fn word_moves() {
        assert_eq!(line(b"aa bb\x1bbX\r"), "aa Xbb");
        assert_eq!(line(b"aa bb\x01\x1bfX\r"), "aaX bb");
    }

    #[test]
    fn ctrl_c_abandons_and_ctrl_d_ends() {
        let mut ed = Editor::new("> ");
        let (evs, out) = run(&mut ed, b"abc\x03");
        assert_eq!(evs, vec![Event::Interrupt]);
        assert!(out.ends_with("^C\r\n"));
        assert_eq!(ed.line(), "");
        let (evs, _) = run(&mut ed, b"\x04");
        assert_eq!(evs, vec![Event::Eof]);
    }

    #[test]
    fn ctrl_l_clears_and_redraws() {
        let mut ed = Editor::new("> ");
        let (_, out) = run(&mut ed, b"ab\x0c");
        assert_eq!(out, "ab\x1b[2J\x1b[H\r> ab\x1b[K");
    }

    #[test]
    fn redraw_places_cursor() {
        let mut ed = Editor::new("> ");
        let (_, out) = run(&mut ed, b"abc\x1b[D\x1b[DX");
        assert!(out.ends_with("\r> aXbc\x1b[K\x1b[2D"), "{out:?}");
        assert_eq!(ed.cursor(), 2);
    }

    #[test]
    fn history_up_and_down() {
        let mut ed = Editor::new("> ");
        ed.add_history("one");
        ed.add_history("two");
        ed.add_history("two");
        ed.add_history("   ");
        assert_eq!(ed.history(), &["one".to_string(), "two".to_string()]);
        let (evs, _) = run(&mut ed, b"\x1b[A\x1b[A\x1b[A\r");
        assert_eq!(evs, vec![Event::Line("one".into())]);
        let (evs, _) = run(&mut ed, b"draft\x1b[A\x1b[B\x1b[B\r");
        assert_eq!(evs, vec![Event::Line("draft".into())]);
        let (evs, _) = run(&mut ed, b"\x1bOA!\r");
        assert_eq!(evs, vec![Event::Line("two!".into())]);
    }

    #[test]
    fn tab_completion() {
        assert_eq!(line(b"ech\t\r"), "echo ");
        // Two candidates: the common prefix, then a listing.
        let mut ed = Editor::new("> ");
        let (_, out) = run(&mut ed, b"e\t");
        assert!(out.contains("echo  exit"), "{out:?}");
        assert_eq!(line(b"cat /ex\t\r"), "cat /extra_files/");
        assert_eq!(line(b"cat /extra_files/w\t\r"), "cat /extra_files/wasm/");
        assert_eq!(line(b"zzz\t\r"), "zzz");
    }

    #[test]
    fn utf8_and_bursts() {
        assert_eq!(line("héllo ✓\r".as_bytes()), "héllo ✓");
        assert_eq!(line("✓\x1b[Dé\r".as_bytes()), "é✓");
        // Invalid UTF-8 is dropped, the rest survives.
        assert_eq!(line(b"a\xff\xfeb\r"), "ab");
        // A whole script pasted at once gives every line in order.
        let mut ed = Editor::new("> ");
        let (evs, _) = run(&mut ed, b"one\rtwo\r\nthree\n");
        assert_eq!(evs, vec![Event::Line("one".into()), Event::Line("two".into()), Event::Line("three".into())]);
    }

    #[test]
    fn modified_arrow_keys_do_not_leak_characters() {
        assert_eq!(line(b"ab\x1b[1;5Dc\r"), "acb");
    }
}
