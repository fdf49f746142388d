//! The interpreter: runs parsed command lines against a [`Host`] that provides the commands.
//!
//! Every command gets stdin, stdout and stderr as streams ([`Io`]), so redirections and pipes work
//! the same for built-ins and programs. Pipelines run stage by stage, each stage's output feeding
//! the next one's input.
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use spin::Mutex;

use crate::parse::{self, AndOr, Command, Connector, Part, RedirKind, Target, Word};

/// Exit status of a command stopped by Ctrl-C (128 + SIGINT, as in Unix shells).
pub const STATUS_INTERRUPTED: i32 = 130;
/// Exit status of a command that was not found.
pub const STATUS_NOT_FOUND: i32 = 127;
/// Exit status of a syntax error.
pub const STATUS_SYNTAX: i32 = 2;

/// The console the shell runs on.
pub trait Terminal {
    /// Writes bytes to the screen (`\n` is a newline; the terminal handles `\r`).
    fn write(&mut self, data: &[u8]);
    /// Reads keyboard input for a program, blocking until some arrives. Returns 0 at end of input
    /// (Ctrl-D) or when Ctrl-C was pressed.
    fn read(&mut self, buf: &mut [u8]) -> usize;
    /// True once Ctrl-C was pressed while a command runs.
    fn interrupted(&mut self) -> bool {
        false
    }
    /// Waits until input is available (true) or the monotonic time `deadline` (ns) passes
    /// (false). Consoles that cannot tell answer true at once.
    fn input_ready_by(&mut self, _deadline: u64) -> bool {
        true
    }
    /// True for the interactive foreground (keyboard input, Ctrl-C); false for background jobs.
    fn is_foreground(&self) -> bool {
        true
    }
}

/// Most bytes a pipe stage may hold before its writer is stopped (pipes are buffered between
/// stages until commands run concurrently).
pub const PIPE_LIMIT: usize = 32 << 20;

/// A file (or device) that output is streamed into.
pub trait OutputStream {
    /// Writes all of `data`.
    fn write(&mut self, data: &[u8]) -> Result<(), String>;
}

/// A file that input is streamed from.
pub trait InputStream {
    /// Reads up to `buf.len()` bytes; 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, String>;
    /// Waits until a read would not block (true) or the monotonic time `deadline` (ns) passes
    /// (false). Files are always ready.
    fn ready_by(&mut self, _deadline: u64) -> bool {
        true
    }
}

/// Output collected for the next pipe stage.
pub struct PipeBuffer {
    pub data: Vec<u8>,
    /// Set when the stage wrote more than [`PIPE_LIMIT`].
    pub full: bool,
}

/// An output file and the first error writing to it.
pub struct StreamState {
    stream: Box<dyn OutputStream>,
    error: Option<String>,
}

/// Where a command's output goes.
#[derive(Clone)]
pub enum Sink {
    /// The console.
    Terminal,
    /// Collected in memory for the next pipe stage.
    Buffer(Arc<Mutex<PipeBuffer>>),
    /// Streamed into a file.
    Stream(Arc<Mutex<StreamState>>),
    /// Discarded.
    Null,
}

impl Sink {
    /// A sink that streams into `stream` (a file or a pipe).
    pub fn stream(stream: Box<dyn OutputStream>) -> Sink {
        // Atomic count and a lock: the kernel hands sinks to tasks that run on other CPUs. The
        // streams themselves are not `Send` by type (kernel pipes, files), but are kernel
        // objects safe to use from any CPU.
        #[allow(clippy::arc_with_non_send_sync)]
        Sink::Stream(Arc::new(Mutex::new(StreamState { stream, error: None })))
    }

    fn buffer() -> (Sink, Arc<Mutex<PipeBuffer>>) {
        let b = Arc::new(Mutex::new(PipeBuffer { data: Vec::new(), full: false }));
        (Sink::Buffer(b.clone()), b)
    }

    /// True once writing can no longer succeed (pipe full, file error).
    fn broken(&self) -> bool {
        match self {
            Sink::Buffer(b) => b.lock().full,
            Sink::Stream(s) => s.lock().error.is_some(),
            _ => false,
        }
    }
}

/// Where a command's input comes from.
pub enum Source {
    /// The console keyboard.
    Terminal,
    /// Bytes from the previous pipe stage.
    Bytes { data: Vec<u8>, pos: usize },
    /// A file.
    Stream(Box<dyn InputStream>),
}

/// The three standard streams of a running command.
pub struct Io<'a> {
    pub stdin: Source,
    pub stdout: Sink,
    pub stderr: Sink,
    term: &'a mut dyn Terminal,
}

impl<'a> Io<'a> {
    /// Streams that all lead to the console.
    pub fn terminal(term: &'a mut dyn Terminal) -> Self {
        Io { stdin: Source::Terminal, stdout: Sink::Terminal, stderr: Sink::Terminal, term }
    }

    fn write_to(&mut self, which: u8, data: &[u8]) {
        let sink = if which == 1 { &self.stdout } else { &self.stderr };
        match sink {
            Sink::Terminal => self.term.write(data),
            Sink::Buffer(b) => {
                let mut b = b.lock();
                // Memory may run out before the limit: that also ends the stage, never the kernel.
                if b.full || b.data.len() + data.len() > PIPE_LIMIT || b.data.try_reserve(data.len()).is_err() {
                    b.full = true;
                } else {
                    b.data.extend_from_slice(data);
                }
            }
            Sink::Stream(s) => {
                let mut s = s.lock();
                if s.error.is_none() {
                    if let Err(e) = s.stream.write(data) {
                        s.error = Some(e);
                    }
                }
            }
            Sink::Null => {}
        }
    }

    /// Writes to stdout.
    pub fn out(&mut self, data: &[u8]) {
        self.write_to(1, data);
    }

    /// Writes to stderr.
    pub fn err(&mut self, data: &[u8]) {
        self.write_to(2, data);
    }

    /// Formats to stdout.
    pub fn print(&mut self, args: fmt::Arguments<'_>) {
        let s = alloc::fmt::format(args);
        self.out(s.as_bytes());
    }

    /// Formats to stderr.
    pub fn eprint(&mut self, args: fmt::Arguments<'_>) {
        let s = alloc::fmt::format(args);
        self.err(s.as_bytes());
    }

    /// Reads stdin; 0 means end of input.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        match &mut self.stdin {
            Source::Terminal => self.term.read(buf),
            Source::Bytes { data, pos } => {
                let n = buf.len().min(data.len() - *pos);
                buf[..n].copy_from_slice(&data[*pos..*pos + n]);
                *pos += n;
                n
            }
            Source::Stream(s) => match s.read(buf) {
                Ok(n) => n,
                Err(e) => {
                    self.eprint(format_args!("keel: read error: {e}\n"));
                    0
                }
            },
        }
    }

    /// Waits until reading stdin would not block (true), or until the monotonic time `deadline`
    /// (ns) passes (false): `poll_oneoff` with a timeout on stdin.
    pub fn wait_readable(&mut self, deadline: u64) -> bool {
        match &mut self.stdin {
            Source::Terminal => self.term.input_ready_by(deadline),
            Source::Bytes { .. } => true,
            Source::Stream(s) => s.ready_by(deadline),
        }
    }

    /// Reads all of stdin.
    pub fn read_all(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = self.read(&mut buf);
            if n == 0 {
                return all;
            }
            all.extend_from_slice(&buf[..n]);
        }
    }

    /// True when stdout is the console (programs may then colour or paginate).
    pub fn stdout_is_terminal(&self) -> bool {
        matches!(self.stdout, Sink::Terminal)
    }

    /// True once stdout can take no more (a full pipe or a failing file).
    pub fn output_broken(&self) -> bool {
        self.stdout.broken()
    }

    /// True once Ctrl-C was pressed, or once stdout can take no more (a full pipe or a failing
    /// file): a command should then stop, as a Unix program does on SIGPIPE.
    pub fn interrupted(&mut self) -> bool {
        self.stdout.broken() || self.term.interrupted()
    }

    /// The console itself.
    pub fn terminal_mut(&mut self) -> &mut dyn Terminal {
        self.term
    }
}

/// What the shell needs from the system: commands, files and background jobs.
pub trait Host {
    /// Runs a command the interpreter does not implement itself; returns its exit status.
    /// Return `None` when there is no such command.
    fn run(&mut self, shell: &mut Shell, argv: &[String], io: &mut Io<'_>) -> Option<i32>;
    /// Reads a whole file (for `source`; path as typed, relative to the current directory).
    fn read_file(&mut self, shell: &Shell, path: &str) -> Result<Vec<u8>, String>;
    /// Opens a file for `<` redirection.
    fn open_input(&mut self, shell: &Shell, path: &str) -> Result<Box<dyn InputStream>, String>;
    /// Opens a file for `>`/`>>` redirection, creating it; truncating it unless `append`.
    fn open_output(&mut self, shell: &Shell, path: &str, append: bool) -> Result<Box<dyn OutputStream>, String>;
    /// Runs the commands of a pipeline concurrently, connected by pipes (each with `shell`'s
    /// variables); returns the last command's status. `None`: not supported, and the interpreter
    /// runs the stages one after another, buffering between them.
    fn run_pipeline(&mut self, _shell: &mut Shell, _commands: &[Command]) -> Option<i32> {
        None
    }
    /// Starts a list item in the background (`cmd &`); returns its status.
    fn background(&mut self, _shell: &mut Shell, item: &AndOr, io: &mut Io<'_>) -> i32 {
        io.eprint(format_args!("keel: {}: background jobs are not available yet\n", item.text));
        1
    }
}

/// One-line help for the commands the interpreter itself implements.
pub const BUILTINS: &[(&str, &str)] = &[
    ("echo", "echo [-n] [ARG...]: print the arguments"),
    ("true", "true: do nothing, successfully"),
    ("false", "false: do nothing, unsuccessfully"),
    ("env", "env [-i] [-u NAME]... [NAME=VALUE]... [CMD [ARGS]...]: list the environment, or run CMD with it changed (-i: empty)"),
    ("export", "export NAME[=VALUE]...: give variables to the programs started from here on"),
    ("unset", "unset NAME...: remove variables"),
    ("source", "source FILE: run the commands in FILE (also: . FILE)"),
];

/// How deeply `source` may nest (a script sourcing itself stops here).
pub const MAX_SOURCE_DEPTH: u32 = 16;

/// The interpreter state: variables and the last exit status.
#[derive(Default, Clone)]
pub struct Shell {
    /// Shell variables.
    pub vars: BTreeMap<String, String>,
    /// The names of the variables programs get (`export`); see [`Shell::environment`].
    pub exported: BTreeSet<String>,
    /// Status of the last command (`$?`).
    pub status: i32,
    /// Set by `exit`: the shell should stop.
    pub exit_requested: Option<i32>,
    source_depth: u32,
}

fn is_assignment(s: &str) -> Option<(&str, &str)> {
    let (name, value) = s.split_once('=')?;
    let mut cs = name.chars();
    let ok = cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some((name, value))
}

impl Shell {
    /// A shell with no variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable and exports it (as `export NAME=VALUE`).
    pub fn export(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_string(), value.to_string());
        self.exported.insert(name.to_string());
    }

    /// The environment a program gets: the exported variables.
    pub fn environment(&self) -> Vec<(String, String)> {
        self.exported.iter().filter_map(|k| Some((k.clone(), self.vars.get(k)?.clone()))).collect()
    }

    /// Value of a variable, if set.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Expands `$` parts of a word.
    pub fn expand(&self, w: &Word) -> String {
        let mut s = String::new();
        for p in &w.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Var(v) => s.push_str(self.var(v).unwrap_or("")),
                Part::Status => s.push_str(&self.status.to_string()),
            }
        }
        s
    }

    /// Parses and runs one command line; returns the final status (also kept in `$?`).
    pub fn run_line(&mut self, line: &str, host: &mut dyn Host, term: &mut dyn Terminal) -> i32 {
        let script = match parse::parse(line) {
            Ok(s) => s,
            Err(e) => {
                let col = line.get(..e.pos).map_or(e.pos, |p| p.chars().count());
                let msg = format!("keel: {e}\n  {line}\n  {:col$}^\n", "");
                term.write(msg.as_bytes());
                self.status = STATUS_SYNTAX;
                return self.status;
            }
        };
        for item in &script.items {
            if item.background {
                let mut io = Io::terminal(term);
                self.status = host.background(self, item, &mut io);
                continue;
            }
            self.run_and_or(item, host, term);
            // Ctrl-C (or a kill) ends the whole line; a command that noticed keeps its own status.
            let stopped = term.interrupted();
            if stopped && self.status == 0 {
                self.status = STATUS_INTERRUPTED;
            }
            if stopped || self.exit_requested.is_some() || self.status == STATUS_INTERRUPTED {
                break;
            }
        }
        self.status
    }

    fn run_and_or(&mut self, item: &AndOr, host: &mut dyn Host, term: &mut dyn Terminal) {
        for (conn, pipeline) in &item.pipelines {
            let run = match conn {
                Connector::First => true,
                Connector::And => self.status == 0,
                Connector::Or => self.status != 0,
            };
            if !run {
                continue;
            }
            if pipeline.commands.len() > 1 {
                if let Some(status) = host.run_pipeline(self, &pipeline.commands) {
                    self.status = status;
                    if self.status == STATUS_INTERRUPTED || self.exit_requested.is_some() {
                        return;
                    }
                    continue;
                }
            }
            let mut input: Option<Vec<u8>> = None;
            let n = pipeline.commands.len();
            for (i, cmd) in pipeline.commands.iter().enumerate() {
                let last = i + 1 == n;
                let (stdout, captured) = if last {
                    (Sink::Terminal, None)
                } else {
                    let (s, b) = Sink::buffer();
                    (s, Some(b))
                };
                let stdin = match input.take() {
                    Some(data) => Source::Bytes { data, pos: 0 },
                    None if i > 0 => Source::Bytes { data: Vec::new(), pos: 0 },
                    None => Source::Terminal,
                };
                let io = Io { stdin, stdout, stderr: Sink::Terminal, term: &mut *term };
                self.status = self.run_command(cmd, host, io);
                if let Some(b) = captured {
                    let mut b = b.lock();
                    if b.full {
                        let msg = format!(
                            "keel: pipe buffer full ({} MiB): output of stage {} truncated\n",
                            PIPE_LIMIT >> 20,
                            i + 1
                        );
                        term.write(msg.as_bytes());
                    }
                    input = Some(core::mem::take(&mut b.data));
                }
                if self.status == STATUS_INTERRUPTED || self.exit_requested.is_some() {
                    return;
                }
            }
        }
    }

    /// Runs one command of a pipeline with the given streams (expansion, assignments,
    /// redirections, then the command).
    pub fn run_command(&mut self, cmd: &Command, host: &mut dyn Host, mut io: Io<'_>) -> i32 {
        let mut argv: Vec<String> = cmd.words.iter().map(|w| self.expand(w)).collect();
        // Leading NAME=VALUE words are assignments.
        let n_assign = argv.iter().take_while(|a| is_assignment(a).is_some()).count();
        let assigns: Vec<(String, String)> = argv
            .drain(..n_assign)
            .filter_map(|a| is_assignment(&a).map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();

        // Redirections, left to right. Output files are streamed into as the command writes.
        let mut outputs: Vec<(String, Arc<Mutex<StreamState>>)> = Vec::new();
        for r in &cmd.redirects {
            let sink_ref = |io: &mut Io<'_>, fd: u32, s: Sink| {
                if fd == 2 {
                    io.stderr = s;
                } else {
                    io.stdout = s;
                }
            };
            if r.fd > 2 {
                io.eprint(format_args!("keel: {}: only descriptors 0, 1 and 2 can be redirected\n", r.fd));
                return 1;
            }
            match (&r.target, r.kind) {
                (Target::Fd(to), RedirKind::Dup) => {
                    let s = match to {
                        1 => io.stdout.clone(),
                        2 => io.stderr.clone(),
                        _ => {
                            io.eprint(format_args!("keel: {to}: bad file descriptor\n"));
                            return 1;
                        }
                    };
                    sink_ref(&mut io, r.fd, s);
                }
                (Target::File(w), kind) => {
                    let path = self.expand(w);
                    if path.is_empty() {
                        io.eprint(format_args!("keel: ambiguous redirect: empty file name\n"));
                        return 1;
                    }
                    match kind {
                        RedirKind::Read => match host.open_input(self, &path) {
                            Ok(stream) => io.stdin = Source::Stream(stream),
                            Err(e) => {
                                io.eprint(format_args!("keel: {path}: {e}\n"));
                                return 1;
                            }
                        },
                        _ => {
                            let append = kind == RedirKind::Append;
                            let stream = match host.open_output(self, &path, append) {
                                Ok(s) => s,
                                Err(e) => {
                                    io.eprint(format_args!("keel: {path}: {e}\n"));
                                    return 1;
                                }
                            };
                            #[allow(clippy::arc_with_non_send_sync)] // as in `Sink::stream`
                            let state = Arc::new(Mutex::new(StreamState { stream, error: None }));
                            sink_ref(&mut io, r.fd, Sink::Stream(state.clone()));
                            outputs.push((path, state));
                        }
                    }
                }
                (Target::Fd(_), _) => return 1,
            }
        }

        let status = if argv.is_empty() {
            for (k, v) in assigns {
                self.vars.insert(k, v);
            }
            0
        } else {
            // Assignments before a command go into that command's environment only.
            if assigns.is_empty() {
                self.dispatch(&argv, host, &mut io)
            } else {
                self.with_environment(false, &assigns, |sh| sh.dispatch(&argv, host, &mut io))
            }
        };

        for (path, state) in outputs {
            if let Some(e) = state.lock().error.take() {
                io.term.write(format!("keel: {path}: {e}\n").as_bytes());
                return if status == 0 { 1 } else { status };
            }
        }
        status
    }

    /// Runs `f` with the environment changed: emptied first if `clear`, then `assigns` set and
    /// exported; everything is put back afterwards.
    fn with_environment<T>(&mut self, clear: bool, assigns: &[(String, String)], f: impl FnOnce(&mut Self) -> T) -> T {
        let saved: Vec<(String, Option<String>, bool)> =
            assigns.iter().map(|(k, _)| (k.clone(), self.vars.get(k).cloned(), self.exported.contains(k))).collect();
        let saved_exported = clear.then(|| core::mem::take(&mut self.exported));
        for (k, v) in assigns {
            self.export(k, v);
        }
        let r = f(self);
        for (k, old, was_exported) in saved.into_iter().rev() {
            match old {
                Some(v) => self.vars.insert(k.clone(), v),
                None => self.vars.remove(&k),
            };
            if !was_exported {
                self.exported.remove(&k);
            }
        }
        if let Some(all) = saved_exported {
            self.exported = all;
        }
        r
    }

    /// `env [-i] [-u NAME]... [NAME=VALUE]... [COMMAND [ARGS]...]`
    fn env(&mut self, args: &[String], host: &mut dyn Host, io: &mut Io<'_>) -> i32 {
        let mut clear = false;
        let mut unset = Vec::new();
        let mut i = 0;
        while let Some(a) = args.get(i) {
            match a.as_str() {
                "-i" | "-" | "--ignore-environment" => clear = true,
                "-u" | "--unset" => {
                    i += 1;
                    let Some(name) = args.get(i) else {
                        io.eprint(format_args!("env: -u needs a NAME\n"));
                        return 2;
                    };
                    unset.push(name.clone());
                }
                "--" => {
                    i += 1;
                    break;
                }
                o if o.starts_with('-') && o.len() > 1 => {
                    io.eprint(format_args!(
                        "env: unknown option {o}\nusage: env [-i] [-u NAME]... [NAME=VALUE]... [COMMAND [ARGS]...]\n"
                    ));
                    return 2;
                }
                _ => break,
            }
            i += 1;
        }
        let mut assigns = Vec::new();
        while let Some((k, v)) = args.get(i).and_then(|a| is_assignment(a)) {
            assigns.push((k.to_string(), v.to_string()));
            i += 1;
        }
        let command = &args[i..];
        let before_unset = self.exported.clone();
        let status = self.with_environment(clear, &assigns, |sh| {
            for name in &unset {
                sh.exported.remove(name);
            }
            if command.is_empty() {
                let mut s = String::new();
                for (k, v) in sh.environment() {
                    s.push_str(&format!("{k}={v}\n"));
                }
                io.out(s.as_bytes());
                0
            } else {
                sh.dispatch(command, host, io)
            }
        });
        if !unset.is_empty() {
            self.exported = before_unset;
        }
        status
    }

    fn source(&mut self, args: &[String], host: &mut dyn Host, io: &mut Io<'_>) -> i32 {
        let Some(path) = args.first() else {
            io.eprint(format_args!("source: missing file operand\n"));
            return 2;
        };
        if self.source_depth >= MAX_SOURCE_DEPTH {
            io.eprint(format_args!("source: {path}: nested too deeply\n"));
            return 1;
        }
        let data = match host.read_file(self, path) {
            Ok(d) => d,
            Err(e) => {
                io.eprint(format_args!("source: {path}: {e}\n"));
                return 1;
            }
        };
        let Ok(text) = core::str::from_utf8(&data) else {
            io.eprint(format_args!("source: {path}: not a text file\n"));
            return 1;
        };
        self.source_depth += 1;
        let mut status = 0;
        for line in parse::logical_lines(text) {
            status = self.run_line(&line, host, io.terminal_mut());
            if self.exit_requested.is_some() || status == STATUS_INTERRUPTED {
                break;
            }
        }
        self.source_depth -= 1;
        status
    }

    /// Runs one already-expanded command (for built-ins such as `time CMD` that run another).
    pub fn run_argv(&mut self, argv: &[String], host: &mut dyn Host, io: &mut Io<'_>) -> i32 {
        if argv.is_empty() {
            return 0;
        }
        self.dispatch(argv, host, io)
    }

    fn dispatch(&mut self, argv: &[String], host: &mut dyn Host, io: &mut Io<'_>) -> i32 {
        let args = &argv[1..];
        match argv[0].as_str() {
            "true" => 0,
            "false" => 1,
            "echo" => {
                let (newline, words) = match args.first().map(String::as_str) {
                    Some("-n") => (false, &args[1..]),
                    _ => (true, args),
                };
                let mut s = words.join(" ");
                if newline {
                    s.push('\n');
                }
                io.out(s.as_bytes());
                0
            }
            "env" => self.env(args, host, io),
            "export" => {
                let mut status = 0;
                for a in args {
                    match is_assignment(a) {
                        Some((k, v)) => self.export(k, v),
                        None if is_assignment(&format!("{a}=")).is_some() => {
                            self.exported.insert(a.clone());
                        }
                        None => {
                            io.eprint(format_args!("export: '{a}': not a valid NAME or NAME=VALUE\n"));
                            status = 1;
                        }
                    }
                }
                status
            }
            "unset" => {
                for a in args {
                    self.vars.remove(a.as_str());
                    self.exported.remove(a.as_str());
                }
                0
            }
            "source" | "." => self.source(args, host, io),
            name => match host.run(self, argv, io) {
                Some(status) => status,
                None => {
                    io.eprint(format_args!("keel: {name}: command not found (try 'help')\n"));
                    STATUS_NOT_FOUND
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::rc::Rc;
    use core::cell::RefCell;

    #[derive(Default)]
    struct Term {
        out: Vec<u8>,
    }

    impl Terminal for Term {
        fn write(&mut self, data: &[u8]) {
            self.out.extend_from_slice(data);
        }
        fn read(&mut self, _: &mut [u8]) -> usize {
            0
        }
    }

    /// A host with `upper` (stdin to upper case), `fail N`, `count` (bytes on stdin), `say`
    /// (stdout and stderr) and a tiny in-memory file table.
    type Files = Rc<RefCell<BTreeMap<String, Vec<u8>>>>;

    #[derive(Default)]
    struct TestHost {
        shared: Files,
        ran: Vec<String>,
    }

    impl TestHost {
        fn file(&self, p: &str) -> Vec<u8> {
            self.shared.borrow()[p].clone()
        }
        fn has(&self, p: &str) -> bool {
            self.shared.borrow().contains_key(p)
        }
    }

    struct MemIn(Vec<u8>, usize);

    impl InputStream for MemIn {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, String> {
            let n = buf.len().min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    struct MemOut {
        files: Files,
        path: String,
        limit: usize,
    }

    impl OutputStream for MemOut {
        fn write(&mut self, data: &[u8]) -> Result<(), String> {
            let mut f = self.files.borrow_mut();
            let v = f.entry(self.path.clone()).or_default();
            if v.len() + data.len() > self.limit {
                return Err("no space left on device".into());
            }
            v.extend_from_slice(data);
            Ok(())
        }
    }

    impl Host for TestHost {
        fn run(&mut self, shell: &mut Shell, argv: &[String], io: &mut Io<'_>) -> Option<i32> {
            self.ran.push(argv.join(" "));
            Some(match argv[0].as_str() {
                "upper" => {
                    let d = io.read_all();
                    io.out(&d.to_ascii_uppercase());
                    0
                }
                "fail" => argv.get(1).and_then(|s| s.parse().ok()).unwrap_or(1),
                "count" => {
                    let n = io.read_all().len();
                    io.print(format_args!("{n}\n"));
                    0
                }
                "flood" => {
                    // Writes until told to stop, like `cat /dev/zero`.
                    let mut n = 0u64;
                    while !io.interrupted() {
                        io.out(&[0u8; 4096]);
                        n += 1;
                    }
                    io.eprint(format_args!("flood stopped after {n} blocks\n"));
                    0
                }
                "say" => {
                    io.out(b"out\n");
                    io.err(b"err\n");
                    0
                }
                "getvar" => {
                    let v = shell.var(&argv[1]).unwrap_or("-").to_string();
                    io.print(format_args!("{v}\n"));
                    0
                }
                "exit" => {
                    shell.exit_requested = Some(0);
                    0
                }
                "interrupt" => STATUS_INTERRUPTED,
                _ => return None,
            })
        }
        fn read_file(&mut self, _: &Shell, path: &str) -> Result<Vec<u8>, String> {
            self.shared.borrow().get(path).cloned().ok_or_else(|| "no such file or directory".into())
        }
        fn open_input(&mut self, shell: &Shell, path: &str) -> Result<Box<dyn InputStream>, String> {
            let data = self.read_file(shell, path)?;
            Ok(Box::new(MemIn(data, 0)))
        }
        fn open_output(&mut self, _: &Shell, path: &str, append: bool) -> Result<Box<dyn OutputStream>, String> {
            if path.starts_with("/ro/") {
                return Err("read-only file system".into());
            }
            let mut files = self.shared.borrow_mut();
            let f = files.entry(path.into()).or_default();
            if !append {
                f.clear();
            }
            let limit = if path == "small" { 4 } else { usize::MAX };
            Ok(Box::new(MemOut { files: self.shared.clone(), path: path.into(), limit }))
        }
    }

    fn run(lines: &[&str]) -> (String, TestHost, Shell) {
        let mut sh = Shell::new();
        let mut host = TestHost::default();
        let mut term = Term::default();
        for l in lines {
            sh.run_line(l, &mut host, &mut term);
        }
        (String::from_utf8(term.out).unwrap(), host, sh)
    }

    #[test]
    fn echo_and_variables() {
        let (out, _, _) = run(&["echo hello   world", "X=1", "echo $X ${X}2 \"$X 3\" '$X'", "echo -n a; echo b"]);
        assert_eq!(out, "hello world\n1 12 1 3 $X\nab\n");
    }

    #[test]
    fn status_and_connectors() {
        let (out, _, sh) =
            run(&["fail 3", "echo $?", "false && echo no || echo yes", "true && echo a && echo b", "true || echo no"]);
        assert_eq!(out, "3\nyes\na\nb\n");
        assert_eq!(sh.status, 0);
        let (out, _, sh) = run(&["nosuch"]);
        assert!(out.contains("nosuch: command not found"));
        assert_eq!(sh.status, STATUS_NOT_FOUND);
    }

    #[test]
    fn pipes_between_commands() {
        let (out, host, _) = run(&["echo abc | upper", "echo abc | upper | count", "say | count"]);
        assert_eq!(out, "ABC\n4\nerr\n4\n");
        assert_eq!(host.ran.len(), 5);
    }

    #[test]
    fn redirections() {
        let (out, host, _) =
            run(&["echo one > f", "echo two >> f", "upper < f", "say 2> e > o", "say > b 2>&1", "count < nope"]);
        assert_eq!(host.file("f"), b"one\ntwo\n");
        assert_eq!(host.file("e"), b"err\n");
        assert_eq!(host.file("o"), b"out\n");
        assert_eq!(host.file("b"), b"out\nerr\n");
        assert_eq!(out, "ONE\nTWO\nkeel: nope: no such file or directory\n");
        let (out, host, sh) = run(&["echo x > /ro/f"]);
        assert_eq!(out, "keel: /ro/f: read-only file system\n");
        assert!(!host.has("/ro/f"));
        assert_eq!(sh.status, 1);
        // `> f` alone creates an empty file.
        let (_, host, _) = run(&["> empty"]);
        assert_eq!(host.file("empty"), b"");
    }

    #[test]
    fn full_pipes_and_files_stop_the_writer() {
        let (out, _, _) = run(&["flood | count"]);
        let blocks = PIPE_LIMIT / 4096 + 1;
        assert!(out.contains(&format!("flood stopped after {blocks} blocks")), "{out}");
        assert!(out.contains("keel: pipe buffer full (32 MiB): output of stage 1 truncated"), "{out}");
        assert!(out.ends_with(&format!("{}\n", blocks * 4096 - 4096)), "{out}");
        let (out, host, sh) = run(&["echo 12345 > small"]);
        assert_eq!(out, "keel: small: no space left on device\n");
        assert_eq!(sh.status, 1);
        assert_eq!(host.file("small"), b"");
    }

    #[test]
    fn syntax_errors_run_nothing() {
        let (out, host, sh) = run(&["say; echo 'oops"]);
        assert_eq!(out, "keel: syntax error at column 11: unclosed ' quote\n  say; echo 'oops\n            ^\n");
        assert!(host.ran.is_empty());
        assert_eq!(sh.status, STATUS_SYNTAX);
    }

    #[test]
    fn export_unset_env_and_prefix_assignments() {
        let (out, _, sh) = run(&["export A=1 B=2", "unset A", "env", "C=3 getvar C", "getvar C", "export 1x"]);
        assert_eq!(out, "B=2\n3\n-\nexport: '1x': not a valid NAME or NAME=VALUE\n");
        assert_eq!(sh.status, 1);
    }

    #[test]
    fn only_exported_variables_reach_programs() {
        let (out, _, sh) = run(&[
            "PLAIN=1",
            "export EXP=2",
            "env",
            "LATER=3; export LATER",
            "env",
            "EXP=changed",
            "env",
            "ONE=x env",
            "env",
        ]);
        assert_eq!(
            out,
            "EXP=2\nEXP=2\nLATER=3\nEXP=changed\nLATER=3\nEXP=changed\nLATER=3\nONE=x\nEXP=changed\nLATER=3\n"
        );
        assert_eq!(sh.var("PLAIN"), Some("1"));
        assert_eq!(sh.var("ONE"), None);
    }

    #[test]
    fn env_runs_a_command_with_a_changed_environment() {
        let (out, _, sh) = run(&[
            "export A=1 B=2",
            "env -i env",
            "echo --",
            "env -i C=3 env",
            "env -u A env",
            "env -i getvar A",
            "env A=9 getvar A",
            "env",
            "env -x",
        ]);
        assert_eq!(out, "--\nC=3\nB=2\n1\n9\nA=1\nB=2\nenv: unknown option -x\nusage: env [-i] [-u NAME]... [NAME=VALUE]... [COMMAND [ARGS]...]\n");
        assert_eq!(sh.status, 2);
    }

    #[test]
    fn exit_and_interrupt_stop_the_line() {
        let (out, _, sh) = run(&["exit; echo after"]);
        assert_eq!(out, "");
        assert_eq!(sh.exit_requested, Some(0));
        let (out, _, _) = run(&["interrupt; echo after"]);
        assert_eq!(out, "");
    }

    #[test]
    fn background_is_reported_until_jobs_exist() {
        let (out, _, _) = run(&["say &"]);
        assert!(out.contains("background jobs are not available yet"));
    }
}
