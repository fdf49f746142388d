//! `http://` and `https://` URLs: what `fetch` takes and what a redirect's `Location` gives.

use alloc::format;
use alloc::string::{String, ToString};

/// The schemes `fetch` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Why a URL was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    UnsupportedScheme(String),
    MissingHost,
    BadPort(String),
    BadCharacter,
}

impl core::fmt::Display for UrlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UrlError::UnsupportedScheme(s) => write!(f, "unsupported scheme '{s}' (http:// or https://)"),
            UrlError::MissingHost => f.write_str("no host in the URL"),
            UrlError::BadPort(p) => write!(f, "bad port '{p}'"),
            UrlError::BadCharacter => f.write_str("spaces or control characters in the URL"),
        }
    }
}

impl Url {
    /// Parses `scheme://host[:port][/path][?query]` (a fragment is dropped).
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        if text.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::BadCharacter);
        }
        let (scheme, rest) = text.split_once("://").ok_or(UrlError::UnsupportedScheme(String::new()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(UrlError::UnsupportedScheme(other.to_string())),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // user:password@ is not supported; drop it rather than send it anywhere.
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().ok().filter(|&p| p != 0).ok_or(UrlError::BadPort(p.to_string()))?),
            None => (authority, if scheme == Scheme::Https { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
        Ok(Url { scheme, host: host.to_ascii_lowercase(), port, path })
    }

    /// The URL a `Location` header names, relative to this one.
    pub fn join(&self, location: &str) -> Result<Url, UrlError> {
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = if self.scheme == Scheme::Https { "https" } else { "http" };
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Ok(Url { path, ..self.clone() })
    }

    /// `host` or `host:port` as the Host header wants it.
    pub fn host_header(&self) -> String {
        let default = if self.scheme == Scheme::Https { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The last path segment (what `fetch URL` without `-o` names the file).
    pub fn file_name(&self) -> Option<&str> {
        let path = self.path.split('?').next().unwrap_or("");
        path.rsplit('/').next().filter(|n| !n.is_empty() && *n != "." && *n != "..")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_users_type() {
        let u = Url::parse("http://10.0.2.100:8000/tool.wasm").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.path.as_str()),
            (Scheme::Http, "10.0.2.100", 8000, "/tool.wasm")
        );
        assert_eq!(u.host_header(), "10.0.2.100:8000");
        assert_eq!(u.file_name(), Some("tool.wasm"));
        let u = Url::parse("HTTPS://Example.ORG?q=1#frag").unwrap();
        assert_eq!((u.scheme, u.host.as_str(), u.port, u.path.as_str()), (Scheme::Https, "example.org", 443, "/?q=1"));
        assert_eq!(u.host_header(), "example.org");
        assert_eq!(u.file_name(), None);
        assert_eq!(Url::parse("http://u:p@h/x").unwrap().host, "h");
    }

    #[test]
    fn refuses_what_it_cannot_fetch() {
        assert_eq!(Url::parse("ftp://h/x"), Err(UrlError::UnsupportedScheme("ftp".into())));
        assert_eq!(Url::parse("h/x"), Err(UrlError::UnsupportedScheme(String::new())));
        assert_eq!(Url::parse("http:///x"), Err(UrlError::MissingHost));
        assert_eq!(Url::parse("http://h:0/"), Err(UrlError::BadPort("0".into())));
        assert_eq!(Url::parse("http://h:99999/"), Err(UrlError::BadPort("99999".into())));
        assert_eq!(Url::parse("http://h/a b"), Err(UrlError::BadCharacter));
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let base = Url::parse("http://h:81/dir/file?x=1").unwrap();
        assert_eq!(base.join("/abs").unwrap().path, "/abs");
        assert_eq!(base.join("rel.wasm").unwrap().path, "/dir/rel.wasm");
        assert_eq!(base.join("//other/p").unwrap().host, "other");
        let other = base.join("https://o.example/y").unwrap();
        assert_eq!((other.scheme, other.port), (Scheme::Https, 443));
    }
}
