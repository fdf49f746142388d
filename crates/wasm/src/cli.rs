//! The `wasm` command line, following wasmtime's where it makes sense:
//! `wasm [--engine auto|interp|compiled] [--dir HOST[::GUEST]]... [--env K=V]... [--fuel N]
//! [--max-memory SIZE] FILE [ARGS...]`.
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Which engine runs a program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineChoice {
    /// The compiled tier when the module has an artefact this build made (and no `--fuel`),
    /// else the interpreter.
    #[default]
    Auto,
    /// Always the interpreter.
    Interp,
    /// Only the compiled tier: an error without a valid artefact.
    Compiled,
}

impl EngineChoice {
    /// Parses `--engine`'s value (`interpreter` is accepted for `interp`).
    pub fn parse(v: &str) -> Result<EngineChoice, String> {
        match v {
            "auto" => Ok(EngineChoice::Auto),
            "interp" | "interpreter" => Ok(EngineChoice::Interp),
            "compiled" => Ok(EngineChoice::Compiled),
            v => Err(format!("--engine {v}: expected auto, interp or compiled")),
        }
    }

    /// The value `--engine` takes for it.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineChoice::Auto => "auto",
            EngineChoice::Interp => "interp",
            EngineChoice::Compiled => "compiled",
        }
    }
}

/// Parsed `wasm` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WasmArgs {
    /// (host directory, name the guest sees)
    pub dirs: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    /// Total fuel budget (None: unlimited).
    pub fuel: Option<u64>,
    /// Memory limit in bytes (None: the default).
    pub max_memory: Option<usize>,
    /// The program's `argv[0]` (None: FILE as given).
    pub argv0: Option<String>,
    /// Wall-clock limit in nanoseconds (None: none).
    pub timeout_ns: Option<u64>,
    /// `--engine`.
    pub engine: EngineChoice,
    /// `--tcplisten ADDR:PORT`: listening sockets given to the program (fds 3, 4, ...).
    pub listen: Vec<(String, u16)>,
    /// `--cpu N`: the program runs on CPU N only (as `taskset`; for benchmarks).
    pub cpu: Option<usize>,
    pub file: String,
    pub args: Vec<String>,
}

/// Usage text.
pub const USAGE: &str =
    "usage: wasm [--engine auto|interp|compiled] [--dir HOST[::GUEST]]... [--env NAME=VALUE]... [--tcplisten ADDR:PORT]... [--fuel N] [--max-memory SIZE] [--timeout SECS] [--cpu N] [--argv0 NAME] FILE [ARGS...]";

/// Parses a size such as `4096`, `64K`, `16M`, `1G` (binary units).
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let s = s.strip_suffix("iB").or_else(|| s.strip_suffix('B')).unwrap_or(s);
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1usize << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: usize = num.parse().ok()?;
    n.checked_mul(mult)
}

/// Walks the leading `--name[=value]` options of `argv`, up to `--` or the first operand, calling
/// `option(name, value)` for each, where `value()` takes the inline `=value` or the next argument.
/// Returns the index of the first operand. (The `wasm` command and `cargo xtask wasm` share it.)
pub fn each_option(
    argv: &[String],
    mut option: impl FnMut(&str, &mut dyn FnMut() -> Result<String, String>) -> Result<(), String>,
) -> Result<usize, String> {
    let mut i = 0;
    while i < argv.len() {
        let arg = argv[i].as_str();
        if !arg.starts_with("--") || arg == "--" {
            return Ok(if arg == "--" { i + 1 } else { i });
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg, None),
        };
        let mut next = i;
        {
            let mut value = || -> Result<String, String> {
                if let Some(v) = inline.clone() {
                    return Ok(v);
                }
                next += 1;
                argv.get(next).cloned().ok_or(format!("{name} needs a value"))
            };
            option(name, &mut value)?;
        }
        i = next + 1;
    }
    Ok(i)
}

impl WasmArgs {
    /// Parses the arguments after `wasm`.
    pub fn parse(argv: &[String]) -> Result<WasmArgs, String> {
        let mut a = WasmArgs::default();
        let i = each_option(argv, |name, value| {
            match name {
                "--dir" => {
                    let v = value()?;
                    let (host, guest) = match v.split_once("::") {
                        Some((h, g)) => (h.to_string(), g.to_string()),
                        None => (v.clone(), v.clone()),
                    };
                    if host.is_empty() || guest.is_empty() {
                        return Err(format!("--dir {v}: expected HOST[::GUEST]"));
                    }
                    a.dirs.push((host, guest));
                }
                "--env" => {
                    let v = value()?;
                    let Some((k, val)) = v.split_once('=') else {
                        return Err(format!("--env {v}: expected NAME=VALUE"));
                    };
                    a.env.push((k.to_string(), val.to_string()));
                }
                "--fuel" => {
                    let v = value()?;
                    a.fuel = Some(v.parse().map_err(|_| format!("--fuel {v}: not a number"))?);
                }
                "--max-memory" => {
                    let v = value()?;
                    a.max_memory = Some(parse_size(&v).ok_or(format!("--max-memory {v}: not a size (e.g. 64M)"))?);
                }
                "--argv0" => a.argv0 = Some(value()?),
                "--tcplisten" => {
                    let v = value()?;
                    let (addr, port) = v.rsplit_once(':').ok_or(format!("--tcplisten {v}: expected ADDR:PORT"))?;
                    let port = port
                        .parse::<u16>()
                        .ok()
                        .filter(|&p| p != 0)
                        .ok_or(format!("--tcplisten {v}: bad port '{port}'"))?;
                    a.listen.push((addr.to_string(), port));
                }
                "--engine" => a.engine = EngineChoice::parse(&value()?)?,
                "--cpu" => {
                    let v = value()?;
                    a.cpu = Some(v.parse().map_err(|_| format!("--cpu {v}: not a CPU number"))?);
                }
                "--timeout" => {
                    let v = value()?;
                    let secs: f64 = v.parse().map_err(|_| format!("--timeout {v}: not a number of seconds"))?;
                    if !(secs > 0.0 && secs < 1e9) {
                        return Err(format!("--timeout {v}: not a number of seconds"));
                    }
                    a.timeout_ns = Some((secs * 1e9) as u64);
                }
                other => return Err(format!("unknown option {other}")),
            }
            Ok(())
        })?;
        if a.fuel.is_some() && a.engine == EngineChoice::Compiled {
            return Err("--fuel counts the interpreter's instructions: it needs --engine interp or auto".into());
        }
        let Some(file) = argv.get(i) else { return Err("missing FILE".into()) };
        a.file = file.clone();
        a.args = argv[i + 1..].to_vec();
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_options_and_program_arguments() {
        let a = WasmArgs::parse(&v(&[
            "--dir",
            "/tmp::/data",
            "--dir=.",
            "--env",
            "A=1",
            "--fuel",
            "100",
            "--max-memory=64M",
            "--argv0",
            "prog",
            "--timeout=1.5",
            "--cpu",
            "1",
            "--tcplisten",
            "0.0.0.0:8080",
            "--engine=interp",
            "p.wasm",
            "--dir",
            "x",
        ]))
        .unwrap();
        assert_eq!(a.dirs, vec![("/tmp".into(), "/data".into()), (".".into(), ".".into())]);
        assert_eq!(a.env, vec![("A".into(), "1".into())]);
        assert_eq!(a.fuel, Some(100));
        assert_eq!(a.max_memory, Some(64 << 20));
        assert_eq!(a.file, "p.wasm");
        assert_eq!(a.argv0.as_deref(), Some("prog"));
        assert_eq!(a.timeout_ns, Some(1_500_000_000));
        assert_eq!(a.listen, [("0.0.0.0".to_string(), 8080)]);
        assert_eq!(a.engine, EngineChoice::Interp);
        assert_eq!(a.cpu, Some(1));
        assert_eq!(WasmArgs::parse(&v(&["--engine", "compiled", "p"])).unwrap().engine, EngineChoice::Compiled);
        assert_eq!(WasmArgs::parse(&v(&["p"])).unwrap().engine, EngineChoice::Auto);
        assert_eq!(a.args, v(&["--dir", "x"]));
    }

    #[test]
    fn errors_are_clear() {
        assert_eq!(WasmArgs::parse(&v(&[])).unwrap_err(), "missing FILE");
        assert_eq!(WasmArgs::parse(&v(&["--dir"])).unwrap_err(), "--dir needs a value");
        assert_eq!(WasmArgs::parse(&v(&["--bogus", "x"])).unwrap_err(), "unknown option --bogus");
        assert_eq!(WasmArgs::parse(&v(&["--env", "novalue", "x"])).unwrap_err(), "--env novalue: expected NAME=VALUE");
        assert!(WasmArgs::parse(&v(&["--max-memory", "lots", "x"])).is_err());
        assert!(WasmArgs::parse(&v(&["--timeout", "-1", "x"])).is_err());
        assert!(WasmArgs::parse(&v(&["--timeout", "soon", "x"])).is_err());
        assert!(WasmArgs::parse(&v(&["--tcplisten", "8080", "x"])).is_err());
        assert!(WasmArgs::parse(&v(&["--tcplisten", "0.0.0.0:0", "x"])).is_err());
        assert_eq!(
            WasmArgs::parse(&v(&["--engine", "jit", "x"])).unwrap_err(),
            "--engine jit: expected auto, interp or compiled"
        );
        assert!(WasmArgs::parse(&v(&["--engine", "compiled", "--fuel", "9", "x"])).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64K"), Some(65536));
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }
}
