//! The command-line grammar: words with quotes, escapes and `$` expansions; `;`, `&`, `&&`, `||`,
//! pipes, redirections and comments.
//!
//! ```text
//! list     := and_or (( ';' | '&' ) and_or)* [ ';' | '&' ]
//! and_or   := pipeline (( '&&' | '||' ) pipeline)*
//! pipeline := command ( '|' command )*
//! command  := ( word | redirect )+
//! redirect := [fd] ( '<' | '>' | '>>' ) word  |  [fd] '>&' fd
//! ```
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// One piece of a word, expanded at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Literal text (quotes and escapes already removed).
    Lit(String),
    /// `$NAME` or `${NAME}`.
    Var(String),
    /// `$?`, the status of the last command.
    Status,
}

/// A word: the concatenation of its parts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Word {
    pub parts: Vec<Part>,
    /// Byte offset in the line where the word starts.
    pub pos: usize,
}

impl Word {
    /// The word's text if it has no expansions.
    pub fn literal(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                _ => return None,
            }
        }
        Some(s)
    }
}

/// Where a redirection sends a file descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A file path.
    File(Word),
    /// Another descriptor (`2>&1`).
    Fd(u32),
}

/// The kind of a redirection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirKind {
    /// `<`
    Read,
    /// `>`
    Write,
    /// `>>`
    Append,
    /// `>&`
    Dup,
}

/// One redirection of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub fd: u32,
    pub kind: RedirKind,
    pub target: Target,
}

/// A simple command: its words and redirections.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Command {
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
}

/// Commands joined by pipes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Pipeline {
    pub commands: Vec<Command>,
}

/// How a pipeline is joined to the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    /// The first pipeline of the list item.
    First,
    /// `&&`: run if the previous succeeded.
    And,
    /// `||`: run if the previous failed.
    Or,
}

/// Pipelines joined by `&&` and `||`, run in the foreground or (`&`) the background.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AndOr {
    pub pipelines: Vec<(Connector, Pipeline)>,
    pub background: bool,
    /// The source text of this item (for job listings).
    pub text: String,
}

/// A whole command line.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Script {
    pub items: Vec<AndOr>,
}

/// What is wrong with a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    UnclosedQuote(char),
    UnclosedBrace,
    BadVariable,
    /// An operator where a command should be (`| x`, `a && && b`).
    UnexpectedOperator(&'static str),
    /// An operator at the end of the line that needs something after it.
    MissingCommand(&'static str),
    MissingRedirectTarget,
    BadFd,
}

/// A syntax error and the byte offset where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub pos: usize,
    pub kind: ErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "syntax error at column {}: ", self.pos + 1)?;
        match &self.kind {
            ErrorKind::UnclosedQuote(q) => write!(f, "unclosed {q} quote"),
            ErrorKind::UnclosedBrace => f.write_str("unclosed ${"),
            ErrorKind::BadVariable => f.write_str("bad variable name"),
            ErrorKind::UnexpectedOperator(op) => write!(f, "unexpected '{op}'"),
            ErrorKind::MissingCommand(op) => write!(f, "missing command after '{op}'"),
            ErrorKind::MissingRedirectTarget => f.write_str("missing file name after redirection"),
            ErrorKind::BadFd => f.write_str("bad file descriptor in redirection"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(Word),
    /// A redirection operator with its source descriptor.
    Redir(u32, RedirKind),
    Pipe,
    AndIf,
    OrIf,
    Semi,
    Amp,
}

fn op_name(t: &Tok) -> &'static str {
    match t {
        Tok::Pipe => "|",
        Tok::AndIf => "&&",
        Tok::OrIf => "||",
        Tok::Semi => ";",
        Tok::Amp => "&",
        Tok::Redir(_, RedirKind::Read) => "<",
        Tok::Redir(_, RedirKind::Write) => ">",
        Tok::Redir(_, RedirKind::Append) => ">>",
        Tok::Redir(_, RedirKind::Dup) => ">&",
        Tok::Word(_) => "word",
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Self { src, chars: src.char_indices().collect(), i: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|c| c.1)
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).map(|c| c.1)
    }

    fn pos(&self) -> usize {
        self.chars.get(self.i).map_or(self.src.len(), |c| c.0)
    }

    fn tokens(mut self) -> Result<Vec<(usize, Tok)>, ParseError> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            let pos = self.pos();
            match c {
                ' ' | '\t' | '\r' | '\n' => self.i += 1,
                '#' => break,
                '|' if self.peek_at(1) == Some('|') => {
                    self.i += 2;
                    out.push((pos, Tok::OrIf));
                }
                '|' => {
                    self.i += 1;
                    out.push((pos, Tok::Pipe));
                }
                '&' if self.peek_at(1) == Some('&') => {
                    self.i += 2;
                    out.push((pos, Tok::AndIf));
                }
                '&' => {
                    self.i += 1;
                    out.push((pos, Tok::Amp));
                }
                ';' => {
                    self.i += 1;
                    out.push((pos, Tok::Semi));
                }
                '<' | '>' => out.push((pos, self.redir(None))),
                '0'..='9' => {
                    // A digit run directly followed by < or > is a descriptor number.
                    let mut k = 0;
                    while self.peek_at(k).is_some_and(|c| c.is_ascii_digit()) {
                        k += 1;
                    }
                    if matches!(self.peek_at(k), Some('<' | '>')) {
                        let digits: String = (0..k).filter_map(|j| self.peek_at(j)).collect();
                        let fd = digits.parse::<u32>().map_err(|_| ParseError { pos, kind: ErrorKind::BadFd })?;
                        self.i += k;
                        out.push((pos, self.redir(Some(fd))));
                    } else {
                        out.push((pos, Tok::Word(self.word()?)));
                    }
                }
                _ => out.push((pos, Tok::Word(self.word()?))),
            }
        }
        Ok(out)
    }

    fn redir(&mut self, fd: Option<u32>) -> Tok {
        let c = self.peek();
        self.i += 1;
        if c == Some('<') {
            return Tok::Redir(fd.unwrap_or(0), RedirKind::Read);
        }
        let fd = fd.unwrap_or(1);
        match self.peek() {
            Some('>') => {
                self.i += 1;
                Tok::Redir(fd, RedirKind::Append)
            }
            Some('&') => {
                self.i += 1;
                Tok::Redir(fd, RedirKind::Dup)
            }
            _ => Tok::Redir(fd, RedirKind::Write),
        }
    }

    fn word(&mut self) -> Result<Word, ParseError> {
        let mut w = Word { parts: Vec::new(), pos: self.pos() };
        let mut lit = String::new();
        let flush = |lit: &mut String, w: &mut Word| {
            if !lit.is_empty() {
                w.parts.push(Part::Lit(core::mem::take(lit)));
            }
        };
        // A word made only of empty quotes ("") is still a word.
        let mut quoted = false;
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' | '|' | '&' | ';' | '<' | '>' => break,
                '\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some(n) => {
                            lit.push(n);
                            self.i += 1;
                        }
                        None => lit.push('\\'),
                    }
                }
                '\'' => {
                    let start = self.pos();
                    self.i += 1;
                    quoted = true;
                    loop {
                        match self.peek() {
                            None => return Err(ParseError { pos: start, kind: ErrorKind::UnclosedQuote('\'') }),
                            Some('\'') => {
                                self.i += 1;
                                break;
                            }
                            Some(ch) => {
                                lit.push(ch);
                                self.i += 1;
                            }
                        }
                    }
                }
                '"' => {
                    let start = self.pos();
                    self.i += 1;
                    quoted = true;
                    loop {
                        match self.peek() {
                            None => return Err(ParseError { pos: start, kind: ErrorKind::UnclosedQuote('"') }),
                            Some('"') => {
                                self.i += 1;
                                break;
                            }
                            Some('\\') => {
                                self.i += 1;
                                match self.peek() {
                                    Some(n @ ('"' | '\\' | '$' | '`')) => {
                                        lit.push(n);
                                        self.i += 1;
                                    }
                                    _ => lit.push('\\'),
                                }
                            }
                            Some('$') => {
                                if let Some(p) = self.dollar()? {
                                    flush(&mut lit, &mut w);
                                    w.parts.push(p);
                                } else {
                                    lit.push('$');
                                }
                            }
                            Some(ch) => {
                                lit.push(ch);
                                self.i += 1;
                            }
                        }
                    }
                }
                '$' if self.peek_at(1) == Some('\'') => {
                    quoted = true;
                    self.ansi_c_string(&mut lit)?;
                }
                '$' => {
                    if let Some(p) = self.dollar()? {
                        flush(&mut lit, &mut w);
                        w.parts.push(p);
                    } else {
                        lit.push('$');
                    }
                }
                _ => {
                    lit.push(c);
                    self.i += 1;
                }
            }
        }
        flush(&mut lit, &mut w);
        if w.parts.is_empty() && quoted {
            w.parts.push(Part::Lit(String::new()));
        }
        Ok(w)
    }

    /// At `$'`: a string with backslash escapes as in bash (`\n`, `\t`, `\\`, `\'`, `\xHH`,
    /// `\0NNN`, ...), appended to `lit`.
    fn ansi_c_string(&mut self, lit: &mut String) -> Result<(), ParseError> {
        let start = self.pos();
        self.i += 2;
        loop {
            let Some(c) = self.peek() else {
                return Err(ParseError { pos: start, kind: ErrorKind::UnclosedQuote('\'') });
            };
            self.i += 1;
            match c {
                '\'' => return Ok(()),
                '\\' => {
                    let Some(e) = self.peek() else { continue };
                    self.i += 1;
                    let simple = match e {
                        'n' => Some('\n'),
                        't' => Some('\t'),
                        'r' => Some('\r'),
                        'a' => Some('\x07'),
                        'b' => Some('\x08'),
                        'e' | 'E' => Some('\x1b'),
                        'f' => Some('\x0c'),
                        'v' => Some('\x0b'),
                        '\\' | '\'' | '"' | '?' => Some(e),
                        _ => None,
                    };
                    if let Some(ch) = simple {
                        lit.push(ch);
                        continue;
                    }
                    let (radix, max) = match e {
                        'x' => (16, 2),
                        '0'..='7' => {
                            self.i -= 1;
                            (8, 3)
                        }
                        _ => {
                            lit.push('\\');
                            lit.push(e);
                            continue;
                        }
                    };
                    let mut value = 0u32;
                    let mut digits = 0;
                    while digits < max {
                        match self.peek().and_then(|d| d.to_digit(radix)) {
                            Some(d) => {
                                value = value * radix + d;
                                self.i += 1;
                                digits += 1;
                            }
                            None => break,
                        }
                    }
                    match char::from_u32(value) {
                        Some(ch) if digits > 0 => lit.push(ch),
                        _ => {
                            lit.push('\\');
                            lit.push(e);
                        }
                    }
                }
                c => lit.push(c),
            }
        }
    }

    /// At a `$`: parses an expansion, or returns None (and consumes the `$`) for a lone dollar.
    fn dollar(&mut self) -> Result<Option<Part>, ParseError> {
        let start = self.pos();
        self.i += 1;
        match self.peek() {
            Some('?') => {
                self.i += 1;
                Ok(Some(Part::Status))
            }
            Some('{') => {
                self.i += 1;
                let mut name = String::new();
                loop {
                    match self.peek() {
                        None => return Err(ParseError { pos: start, kind: ErrorKind::UnclosedBrace }),
                        Some('}') => {
                            self.i += 1;
                            break;
                        }
                        Some(c) => {
                            name.push(c);
                            self.i += 1;
                        }
                    }
                }
                if name == "?" {
                    return Ok(Some(Part::Status));
                }
                let mut cs = name.chars();
                if !cs.next().is_some_and(is_name_start) || !cs.all(is_name_char) {
                    return Err(ParseError { pos: start, kind: ErrorKind::BadVariable });
                }
                Ok(Some(Part::Var(name)))
            }
            Some(c) if is_name_start(c) => {
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
                    name.push(c);
                    self.i += 1;
                }
                Ok(Some(Part::Var(name)))
            }
            _ => Ok(None),
        }
    }
}

/// True when `text` only fails to parse because a quoted string is still open: a shell then
/// reads another line (prompt `> `) and parses both, joined by a newline.
pub fn incomplete(text: &str) -> bool {
    matches!(parse(text), Err(ParseError { kind: ErrorKind::UnclosedQuote(_), .. }))
}

/// Splits a script into commands: lines, where a line inside an open quote continues into the
/// next one (`source` files, scripts).
pub fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for line in text.lines() {
        let full = match pending.take() {
            Some(mut p) => {
                p.push('\n');
                p.push_str(line);
                p
            }
            None => String::from(line),
        };
        if incomplete(&full) {
            pending = Some(full);
        } else {
            out.push(full);
        }
    }
    // A quote never closed: the line goes through as is (and reports its syntax error).
    out.extend(pending);
    out
}

/// Parses a command line. An empty line or a comment gives an empty script.
pub fn parse(line: &str) -> Result<Script, ParseError> {
    let toks = Lexer::new(line).tokens()?;
    let mut script = Script::default();
    let mut i = 0;
    let end_pos = line.len();
    while i < toks.len() {
        let item_start = toks[i].0;
        let mut item = AndOr::default();
        let mut connector = Connector::First;
        loop {
            // One pipeline.
            let mut pipeline = Pipeline::default();
            loop {
                let mut cmd = Command::default();
                while let Some((pos, t)) = toks.get(i) {
                    match t {
                        Tok::Word(w) => {
                            cmd.words.push(w.clone());
                            i += 1;
                        }
                        Tok::Redir(fd, kind) => {
                            let (fd, kind) = (*fd, *kind);
                            i += 1;
                            let target = match (toks.get(i), kind) {
                                (Some((_, Tok::Word(w))), RedirKind::Dup) => {
                                    let n = w.literal().and_then(|s| s.parse::<u32>().ok());
                                    Target::Fd(n.ok_or(ParseError { pos: w.pos, kind: ErrorKind::BadFd })?)
                                }
                                (Some((_, Tok::Word(w))), _) => Target::File(w.clone()),
                                (Some((p, _)), _) => {
                                    return Err(ParseError { pos: *p, kind: ErrorKind::MissingRedirectTarget })
                                }
                                (None, _) => {
                                    return Err(ParseError { pos: *pos, kind: ErrorKind::MissingRedirectTarget })
                                }
                            };
                            i += 1;
                            cmd.redirects.push(Redirect { fd, kind, target });
                        }
                        _ => break,
                    }
                }
                if cmd.words.is_empty() && cmd.redirects.is_empty() {
                    // An operator (or the end) where a command should be.
                    return Err(match toks.get(i) {
                        Some((p, t)) => ParseError { pos: *p, kind: ErrorKind::UnexpectedOperator(op_name(t)) },
                        None => {
                            let (p, t) = &toks[i - 1];
                            let _ = end_pos;
                            ParseError { pos: *p, kind: ErrorKind::MissingCommand(op_name(t)) }
                        }
                    });
                }
                pipeline.commands.push(cmd);
                if let Some((_, Tok::Pipe)) = toks.get(i) {
                    i += 1;
                    continue;
                }
                break;
            }
            item.pipelines.push((connector, pipeline));
            match toks.get(i) {
                Some((_, Tok::AndIf)) => connector = Connector::And,
                Some((_, Tok::OrIf)) => connector = Connector::Or,
                _ => break,
            }
            i += 1;
        }
        let item_end = match toks.get(i) {
            Some((p, Tok::Semi)) => {
                i += 1;
                *p
            }
            Some((p, Tok::Amp)) => {
                item.background = true;
                i += 1;
                *p
            }
            Some((p, t)) => return Err(ParseError { pos: *p, kind: ErrorKind::UnexpectedOperator(op_name(t)) }),
            None => line.len(),
        };
        item.text = String::from(line.get(item_start..item_end).unwrap_or("").trim());
        script.items.push(item);
    }
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn lit(s: &str) -> Part {
        Part::Lit(s.to_string())
    }

    fn words(line: &str) -> Vec<Vec<Part>> {
        let s = parse(line).unwrap();
        s.items[0].pipelines[0].1.commands[0].words.iter().map(|w| w.parts.clone()).collect()
    }

    fn err(line: &str) -> ParseError {
        parse(line).unwrap_err()
    }

    #[test]
    fn splits_words_and_ignores_blanks_and_comments() {
        assert_eq!(words("  echo   a\tb  # c d"), vec![vec![lit("echo")], vec![lit("a")], vec![lit("b")]]);
        assert_eq!(parse("").unwrap().items.len(), 0);
        assert_eq!(parse("   # only a comment").unwrap().items.len(), 0);
        // A # inside a word is not a comment.
        assert_eq!(words("echo a#b"), vec![vec![lit("echo")], vec![lit("a#b")]]);
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(words(r#"echo 'a  b' "c d" e\ f"#)[1..], [vec![lit("a  b")], vec![lit("c d")], vec![lit("e f")]]);
        assert_eq!(
            words(r#"echo '$HOME' "\$x\"\\" \|"#)[1..],
            [vec![lit("$HOME")], vec![lit("$x\"\\")], vec![lit("|")]]
        );
        assert_eq!(words(r#"echo "" ''"#)[1..], [vec![lit("")], vec![lit("")]]);
        assert_eq!(words(r#"echo a"b c"'d'"#)[1], vec![lit("ab cd")]);
        assert_eq!(words(r#"echo "a\nb""#)[1], vec![lit("a\\nb")]);
    }

    #[test]
    fn variables() {
        assert_eq!(
            words(r#"echo $HOME ${X}y "$A-$?" $ a$"#)[1..],
            [
                vec![Part::Var("HOME".into())],
                vec![Part::Var("X".into()), lit("y")],
                vec![Part::Var("A".into()), lit("-"), Part::Status],
                vec![lit("$")],
                vec![lit("a$")],
            ]
        );
        assert_eq!(err("echo ${A").kind, ErrorKind::UnclosedBrace);
        assert_eq!(err("echo ${1a}").kind, ErrorKind::BadVariable);
    }

    #[test]
    fn lists_and_connectors() {
        let s = parse("a; b && c || d & e").unwrap();
        assert_eq!(s.items.len(), 3);
        assert_eq!(s.items[0].text, "a");
        let conns: Vec<Connector> = s.items[1].pipelines.iter().map(|p| p.0).collect();
        assert_eq!(conns, vec![Connector::First, Connector::And, Connector::Or]);
        assert!(s.items[1].background);
        assert_eq!(s.items[1].text, "b && c || d");
        assert!(!s.items[2].background);
        assert_eq!(parse("a;").unwrap().items.len(), 1);
        assert!(parse("sleep 1 &").unwrap().items[0].background);
    }

    #[test]
    fn pipes_and_redirections() {
        let s = parse("cat < in.txt | grep x 2> err >> out 2>&1 >o").unwrap();
        let p = &s.items[0].pipelines[0].1;
        assert_eq!(p.commands.len(), 2);
        assert_eq!(p.commands[0].redirects[0].kind, RedirKind::Read);
        assert_eq!(p.commands[0].redirects[0].fd, 0);
        let r = &p.commands[1].redirects;
        assert_eq!((r[0].fd, r[0].kind), (2, RedirKind::Write));
        assert_eq!((r[1].fd, r[1].kind), (1, RedirKind::Append));
        assert_eq!(r[2], Redirect { fd: 2, kind: RedirKind::Dup, target: Target::Fd(1) });
        assert_eq!((r[3].fd, r[3].kind), (1, RedirKind::Write));
        // Digits not followed by a redirection are a word.
        assert_eq!(words("echo 2 3x")[1..], [vec![lit("2")], vec![lit("3x")]]);
        // A redirection alone is a command (creates/truncates the file).
        assert_eq!(parse("> f").unwrap().items.len(), 1);
    }

    #[test]
    fn syntax_errors_have_positions() {
        assert_eq!(err("echo 'abc").kind, ErrorKind::UnclosedQuote('\''));
        assert_eq!(err("echo 'abc").pos, 5);
        assert_eq!(err("echo \"abc").kind, ErrorKind::UnclosedQuote('"'));
        assert_eq!(err("| x"), ParseError { pos: 0, kind: ErrorKind::UnexpectedOperator("|") });
        assert_eq!(err("a |"), ParseError { pos: 2, kind: ErrorKind::MissingCommand("|") });
        assert_eq!(err("a && && b").kind, ErrorKind::UnexpectedOperator("&&"));
        assert_eq!(err("a &&").kind, ErrorKind::MissingCommand("&&"));
        assert_eq!(err("a ||").kind, ErrorKind::MissingCommand("||"));
        assert_eq!(err("; a").kind, ErrorKind::UnexpectedOperator(";"));
        assert_eq!(err("a ;; b").kind, ErrorKind::UnexpectedOperator(";"));
        assert_eq!(err("echo >"), ParseError { pos: 5, kind: ErrorKind::MissingRedirectTarget });
        assert_eq!(err("echo > | x").kind, ErrorKind::MissingRedirectTarget);
        assert_eq!(err("echo 2>&x").kind, ErrorKind::BadFd);
        assert_eq!(err("echo 99999999999>x").kind, ErrorKind::BadFd);
        assert_eq!(err("a |").to_string(), "syntax error at column 3: missing command after '|'");
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(words("echo héllo 'wörld ✓'")[1..], [vec![lit("héllo")], vec![lit("wörld ✓")]]);
    }

    #[test]
    fn ansi_c_quotes() {
        let lit = |line: &str| -> Vec<String> {
            let script = parse(line).unwrap();
            script.items[0].pipelines[0].1.commands[0]
                .words
                .iter()
                .map(|w| w.parts.iter().map(|p| if let Part::Lit(l) = p { l.clone() } else { "$".into() }).collect())
                .collect()
        };
        assert_eq!(
            lit(r"x $'a\nb' $'tab\there' $'q\'s' $'\x41\101\0' $'' $'\\'"),
            vec!["x", "a\nb", "tab\there", "q's", "AA\0", "", "\\"]
        );
        assert_eq!(lit(r"c=$'new\nline' pre$'\e'post"), vec!["c=new\nline", "pre\x1bpost"]);
        assert_eq!(lit(r"$'\q' $'\xZZ'"), vec!["\\q", "\\xZZ"]);
        assert_eq!(err("echo $'abc").kind, ErrorKind::UnclosedQuote('\''));
    }

    #[test]
    fn quotes_continue_over_lines() {
        assert!(incomplete("echo 'abc"));
        assert!(incomplete("echo \"a"));
        assert!(incomplete("echo $'a"));
        assert!(!incomplete("echo 'abc'"));
        assert!(!incomplete("echo |"));
        assert_eq!(
            logical_lines("echo 'a\nb' done\necho \"x\n\ny\"\nls\necho 'never"),
            vec!["echo 'a\nb' done", "echo \"x\n\ny\"", "ls", "echo 'never"]
        );
    }
}
