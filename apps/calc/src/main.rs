//! `calc [EXPRESSION]`: an interactive calculator.
//!
//! Numbers are IEEE-754 doubles shown with full round-trip precision; integers are exact up to
//! 2^53. Operators `+ - * / % ^` (power, right-associative), unary minus, parentheses,
//! variables (`x = 2 * pi`), the last result `ans`, constants `pi`, `e`, `tau`, and functions
//! sqrt cbrt abs sin cos tan asin acos atan sinh cosh tanh exp ln log log2 log10 floor ceil
//! round trunc min max pow hypot atan2. Errors say what and where.
use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(char),
    LParen,
    RParen,
    Comma,
    Assign,
}

/// An error and the column (1-based) where it was found.
#[derive(Debug, PartialEq)]
struct CalcError {
    col: usize,
    msg: String,
}

fn err<T>(col: usize, msg: impl Into<String>) -> Result<T, CalcError> {
    Err(CalcError { col, msg: msg.into() })
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, CalcError> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            match text.parse::<f64>() {
                Ok(v) => out.push((col, Tok::Num(v))),
                Err(_) => return err(col, format!("bad number '{text}'")),
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((col, Tok::Ident(chars[start..i].iter().collect())));
        } else {
            let t = match c {
                '+' | '-' | '*' | '/' | '%' | '^' => Tok::Op(c),
                '×' => Tok::Op('*'),
                '÷' => Tok::Op('/'),
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                ',' => Tok::Comma,
                '=' => Tok::Assign,
                _ => return err(col, format!("unexpected character '{c}'")),
            };
            out.push((col, t));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: &'a [(usize, Tok)],
    pos: usize,
    vars: &'a BTreeMap<String, f64>,
    end_col: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end_col, |t| t.0)
    }

    fn expr(&mut self) -> Result<f64, CalcError> {
        let mut v = self.term()?;
        while let Some(Tok::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.pos += 1;
            let r = self.term()?;
            v = if op == '+' { v + r } else { v - r };
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<f64, CalcError> {
        let mut v = self.unary()?;
        while let Some(Tok::Op(op @ ('*' | '/' | '%'))) = self.peek().cloned() {
            let col = self.col();
            self.pos += 1;
            let r = self.unary()?;
            v = match op {
                '*' => v * r,
                '/' if r == 0.0 => return err(col, "division by zero"),
                '/' => v / r,
                _ if r == 0.0 => return err(col, "remainder by zero"),
                _ => v % r,
            };
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<f64, CalcError> {
        match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Ok(-self.unary()?)
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        let base = self.atom()?;
        if let Some(Tok::Op('^')) = self.peek() {
            self.pos += 1;
            let exp = self.unary()?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<f64, CalcError> {
        let col = self.col();
        match self.peek().cloned() {
            Some(Tok::Num(v)) => {
                self.pos += 1;
                Ok(v)
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let v = self.expr()?;
                self.expect_rparen(col)?;
                Ok(v)
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                if let Some(Tok::LParen) = self.peek() {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if self.peek() != Some(&Tok::RParen) {
                        args.push(self.expr()?);
                        while self.peek() == Some(&Tok::Comma) {
                            self.pos += 1;
                            args.push(self.expr()?);
                        }
                    }
                    self.expect_rparen(col)?;
                    return call(&name, &args, col);
                }
                match name.as_str() {
                    "pi" => Ok(std::f64::consts::PI),
                    "e" => Ok(std::f64::consts::E),
                    "tau" => Ok(std::f64::consts::TAU),
                    "inf" => Ok(f64::INFINITY),
                    _ => {
                        self.vars.get(&name).copied().map_or_else(|| err(col, format!("unknown variable '{name}'")), Ok)
                    }
                }
            }
            Some(Tok::RParen) => err(col, "unexpected ')'"),
            Some(Tok::Op(c)) => err(col, format!("expected a number before '{c}'")),
            Some(Tok::Comma) => err(col, "unexpected ','"),
            Some(Tok::Assign) => err(col, "unexpected '='"),
            None => err(col, "expression is incomplete"),
        }
    }

    fn expect_rparen(&mut self, open_col: usize) -> Result<(), CalcError> {
        match self.peek() {
            Some(Tok::RParen) => {
                self.pos += 1;
                Ok(())
            }
            _ => err(self.col(), format!("missing ')' for the '(' at column {open_col}")),
        }
    }
}

fn call(name: &str, a: &[f64], col: usize) -> Result<f64, CalcError> {
    let one = |f: fn(f64) -> f64| -> Result<f64, CalcError> {
        match a {
            [x] => Ok(f(*x)),
            _ => err(col, format!("{name}() takes 1 argument, not {}", a.len())),
        }
    };
    let two = |f: fn(f64, f64) -> f64| -> Result<f64, CalcError> {
        match a {
            [x, y] => Ok(f(*x, *y)),
            _ => err(col, format!("{name}() takes 2 arguments, not {}", a.len())),
        }
    };
    match name {
        "sqrt" => match a {
            [x] if *x < 0.0 => err(col, "sqrt() of a negative number"),
            _ => one(f64::sqrt),
        },
        "cbrt" => one(f64::cbrt),
        "abs" => one(f64::abs),
        "sin" => one(f64::sin),
        "cos" => one(f64::cos),
        "tan" => one(f64::tan),
        "asin" => one(f64::asin),
        "acos" => one(f64::acos),
        "atan" => one(f64::atan),
        "sinh" => one(f64::sinh),
        "cosh" => one(f64::cosh),
        "tanh" => one(f64::tanh),
        "exp" => one(f64::exp),
        "ln" => match a {
            [x] if *x <= 0.0 => err(col, "ln() of a number that is not positive"),
            _ => one(f64::ln),
        },
        "log" | "log10" => match a {
            [x] if *x <= 0.0 => err(col, "log() of a number that is not positive"),
            _ => one(f64::log10),
        },
        "log2" => one(f64::log2),
        "floor" => one(f64::floor),
        "ceil" => one(f64::ceil),
        "round" => one(f64::round),
        "trunc" => one(f64::trunc),
        "min" => two(f64::min),
        "max" => two(f64::max),
        "pow" => two(f64::powf),
        "hypot" => two(f64::hypot),
        "atan2" => two(f64::atan2),
        _ => err(col, format!("unknown function '{name}' (try 'help')")),
    }
}

/// Formats a result: integers without a decimal point, others with full precision.
fn show(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == v.trunc() && v.abs() < 1e16 {
        return format!("{}", v as i64);
    }
    format!("{v}")
}

struct Calc {
    vars: BTreeMap<String, f64>,
}

const RESERVED: [&str; 5] = ["pi", "e", "tau", "inf", "ans"];

impl Calc {
    /// Evaluates one line: `expr` or `name = expr`. Returns the value to print.
    fn line(&mut self, line: &str) -> Result<Option<f64>, CalcError> {
        let toks = lex(line)?;
        if toks.is_empty() {
            return Ok(None);
        }
        let (target, body) = match (toks.first(), toks.get(1)) {
            (Some((c, Tok::Ident(name))), Some((_, Tok::Assign))) => {
                if RESERVED.contains(&name.as_str()) {
                    return err(*c, format!("cannot assign to '{name}'"));
                }
                (Some(name.clone()), &toks[2..])
            }
            _ => (None, &toks[..]),
        };
        let mut p = Parser { toks: body, pos: 0, vars: &self.vars, end_col: line.chars().count() + 1 };
        let v = p.expr()?;
        if p.pos < body.len() {
            let (col, t) = &body[p.pos];
            let what = match t {
                Tok::RParen => "unmatched ')'".to_string(),
                Tok::Assign => "'=' can only follow a variable name at the start".to_string(),
                _ => "expected an operator".to_string(),
            };
            return err(*col, what);
        }
        self.vars.insert("ans".into(), v);
        if let Some(name) = target {
            self.vars.insert(name, v);
        }
        Ok(Some(v))
    }
}

const HELP: &str = "\
Type an expression and press Enter, e.g.  2 * (3 + 4) ^ 2   or   x = sqrt(2)
  operators   + - * / % ^ (power), parentheses, unary minus
  constants   pi e tau inf, and ans (the last result)
  variables   name = expression, then use name
  functions   sqrt cbrt abs sin cos tan asin acos atan sinh cosh tanh exp
              ln log log2 log10 floor ceil round trunc min max pow hypot atan2
  commands    help, vars, quit (or Ctrl-D)";

fn main() {
    let mut calc = Calc { vars: BTreeMap::new() };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        let expr = args.join(" ");
        match calc.line(&expr) {
            Ok(Some(v)) => println!("{}", show(v)),
            Ok(None) => {}
            Err(e) => {
                eprintln!("error at column {}: {}", e.col, e.msg);
                std::process::exit(1);
            }
        }
        return;
    }
    println!("Keel calculator. Type 'help' for help, 'quit' to leave.");
    let stdin = io::stdin();
    let mut out = io::stdout();
    let mut line = String::new();
    loop {
        print!("calc> ");
        let _ = out.flush();
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => {
                println!();
                break;
            }
            Ok(_) => {}
        }
        let l = line.trim();
        match l {
            "quit" | "exit" => break,
            "help" | "?" => println!("{HELP}"),
            "vars" => {
                for (k, v) in &calc.vars {
                    println!("{k} = {}", show(*v));
                }
            }
            _ => match calc.line(l) {
                Ok(Some(v)) => println!("{}", show(v)),
                Ok(None) => {}
                Err(e) => {
                    println!("      {}^", " ".repeat(e.col.saturating_sub(1)));
                    println!("error at column {}: {}", e.col, e.msg);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> Result<String, CalcError> {
        let mut c = Calc { vars: BTreeMap::new() };
        c.line(s).map(|v| show(v.unwrap_or(f64::NAN)))
    }

    #[test]
    fn arithmetic() {
        assert_eq!(eval("1 + 2 * 3").unwrap(), "7");
        assert_eq!(eval("(1 + 2) * 3").unwrap(), "9");
        assert_eq!(eval("2 ^ 3 ^ 2").unwrap(), "512");
        assert_eq!(eval("-2 ^ 2").unwrap(), "-4");
        assert_eq!(eval("7 % 3").unwrap(), "1");
        assert_eq!(eval("1 / 3").unwrap(), "0.3333333333333333");
        assert_eq!(eval("0.1 + 0.2").unwrap(), "0.30000000000000004");
        assert_eq!(eval("2^53 + 1").unwrap(), "9007199254740992");
        assert_eq!(eval("sqrt(2)").unwrap(), "1.4142135623730951");
        assert_eq!(eval("max(3, 4) + hypot(3,4)").unwrap(), "9");
        assert_eq!(eval("1e3 + 1_000").unwrap(), "2000");
    }

    #[test]
    fn variables_and_errors() {
        let mut c = Calc { vars: BTreeMap::new() };
        c.line("x = 6 * 7").unwrap();
        assert_eq!(c.line("x / 2").unwrap(), Some(21.0));
        assert_eq!(c.line("ans + 1").unwrap(), Some(22.0));
        assert_eq!(eval("1 / 0").unwrap_err(), CalcError { col: 3, msg: "division by zero".into() });
        assert_eq!(eval("2 * (3 + 4").unwrap_err().msg, "missing ')' for the '(' at column 5");
        assert_eq!(eval("foo + 1").unwrap_err(), CalcError { col: 1, msg: "unknown variable 'foo'".into() });
        assert_eq!(eval("2 $ 3").unwrap_err().col, 3);
        assert_eq!(eval("2 3").unwrap_err().msg, "expected an operator");
        assert_eq!(eval("pi = 3").unwrap_err().msg, "cannot assign to 'pi'");
        assert_eq!(eval("sqrt(1, 2)").unwrap_err().msg, "sqrt() takes 1 argument, not 2");
        assert_eq!(eval("1 +").unwrap_err().msg, "expression is incomplete");
    }
}
