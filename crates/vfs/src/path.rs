//! Lexical path helpers for the shell (joining with the current directory, normalising).
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// Longest path accepted.
pub const MAX_PATH: usize = 4096;
/// Longest file name accepted.
pub const MAX_NAME: usize = 255;

/// Checks one file name (a path component) for creation.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::InvalidPath);
    }
    if name.len() > MAX_NAME {
        return Err(Error::NameTooLong);
    }
    Ok(())
}

/// Makes `path` absolute relative to `cwd` (itself absolute), without resolving `.`/`..`.
pub fn join(cwd: &str, path: &str) -> String {
    if path.starts_with('/') {
        return String::from(path);
    }
    let mut s = String::from(cwd);
    if !s.ends_with('/') {
        s.push('/');
    }
    s.push_str(path);
    s
}

/// Normalises an absolute path lexically: collapses `//`, removes `.`, resolves `..` (never above
/// `/`). Used for display and for the current directory; lookups walk symlinks properly.
pub fn normalize(path: &str) -> Result<String> {
    if path.len() > MAX_PATH {
        return Err(Error::NameTooLong);
    }
    if path.contains('\0') {
        return Err(Error::InvalidPath);
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = String::new();
    for p in &parts {
        s.push('/');
        s.push_str(p);
    }
    if s.is_empty() {
        s.push('/');
    }
    Ok(s)
}

/// The last component of a path (`/a/b` -> `b`; `/` -> `/`).
pub fn file_name(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        return "/";
    }
    t.rsplit('/').next().unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_normalizes() {
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(join("/", "b"), "/b");
        assert_eq!(join("/a", "/b"), "/b");
        assert_eq!(normalize("/a//b/./c/../d/").unwrap(), "/a/b/d");
        assert_eq!(normalize("/../../x").unwrap(), "/x");
        assert_eq!(normalize("/").unwrap(), "/");
        assert_eq!(normalize("/a/..").unwrap(), "/");
        assert_eq!(normalize("/a\0b"), Err(Error::InvalidPath));
        assert_eq!(normalize(&"/a".repeat(3000)), Err(Error::NameTooLong));
    }

    #[test]
    fn names() {
        assert!(check_name("ok.txt").is_ok());
        assert!(check_name("with space ✓").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert_eq!(check_name(bad), Err(Error::InvalidPath), "{bad:?}");
        }
        assert_eq!(check_name(&"x".repeat(256)), Err(Error::NameTooLong));
        assert_eq!(file_name("/a/b/"), "b");
        assert_eq!(file_name("/"), "/");
        assert_eq!(file_name("x"), "x");
    }
}
