//! Checks the hand-written declarations against include/h2pool.h: every
//! `H2POOL_EXTERN ... h2pool_name(` in the header is declared here and vice
//! versa, and every enum constant has the header's value.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::ffi::CStr;
use std::path::PathBuf;

const SYS_SOURCE: &str = include_str!("../src/lib.rs");

/// The header to compare with: `H2POOL_HEADER`, else the one pkg-config
/// reported at build time, else the source tree's.
fn header_path() -> PathBuf {
    if let Some(p) = std::env::var_os("H2POOL_HEADER") {
        return PathBuf::from(p);
    }
    if let Some(dir) = option_env!("H2POOL_SYS_INCLUDE_DIR") {
        let p = PathBuf::from(dir).join("h2pool.h");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../include/h2pool.h")
}

fn header() -> String {
    let path = header_path();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {}", path.display(), e))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Names of the functions the header exports: for each `H2POOL_EXTERN`, the
/// identifier right before the next `(`.
fn header_functions(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("H2POOL_EXTERN") {
        rest = &rest[at + "H2POOL_EXTERN".len()..];
        let paren = match rest.find('(') {
            Some(p) => p,
            None => break,
        };
        let before = rest[..paren].trim_end();
        let start = before
            .rfind(|c: char| !is_ident(c))
            .map(|i| i + 1)
            .unwrap_or(0);
        let name = &before[start..];
        // Skips the macro's own definitions (`__attribute__`, `__declspec`).
        if name.starts_with("h2pool_") {
            names.insert(name.to_string());
        }
    }
    names
}

/// Names of the functions declared in the sys crate: `fn h2pool_name`.
fn rust_functions(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("fn h2pool_") {
        rest = &rest[at + "fn ".len()..];
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        names.insert(rest[..end].to_string());
    }
    names
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d.trim()),
        None => (false, s),
    };
    let v = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Enum constants of the header (lines `H2POOL_NAME = value[,]`) and its
/// numeric `#define H2POOL_*` macros.
fn header_constants(text: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(def) = line.strip_prefix("#define H2POOL_") {
            // Numeric macros only: `#define H2POOL_NAME 1` or `(-1)`.
            let mut parts = def.split_whitespace();
            if let (Some(name), Some(value)) = (parts.next(), parts.next()) {
                let value = value.trim_start_matches('(').trim_end_matches(')');
                if let Some(v) = parse_int(value) {
                    out.insert(format!("H2POOL_{}", name), v);
                }
            }
            continue;
        }
        if !line.starts_with("H2POOL_") {
            continue;
        }
        if let Some(eq) = line.find('=') {
            let name = line[..eq].trim();
            let value = line[eq + 1..].trim().trim_end_matches(',');
            if let Some(v) = parse_int(value) {
                out.insert(name.to_string(), v);
            }
        }
    }
    out
}

/// Constants of the sys crate: `pub const NAME: type = value;`.
fn rust_constants(text: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let def = match line.strip_prefix("pub const ") {
            Some(d) => d,
            None => continue,
        };
        let colon = match def.find(':') {
            Some(c) => c,
            None => continue,
        };
        let eq = match def.find('=') {
            Some(e) => e,
            None => continue,
        };
        if let Some(v) = parse_int(def[eq + 1..].trim().trim_end_matches(';')) {
            out.insert(def[..colon].trim().to_string(), v);
        }
    }
    out
}

#[test]
fn every_header_function_is_declared_and_no_other() {
    let header = header_functions(&header());
    let rust = rust_functions(SYS_SOURCE);
    assert!(
        header.len() > 40,
        "parsed only {} functions from the header",
        header.len()
    );
    let missing: Vec<_> = header.difference(&rust).collect();
    let extra: Vec<_> = rust.difference(&header).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "declared in {} but not in h2pool-sys: {:?}; in h2pool-sys but not in the header: {:?}",
        header_path().display(),
        missing,
        extra
    );
}

#[test]
fn every_header_constant_has_the_same_value() {
    let header = header_constants(&header());
    let rust = rust_constants(SYS_SOURCE);
    assert!(
        header.contains_key("H2POOL_ERR_TIMEOUT"),
        "constants not parsed: {:?}",
        header
    );
    let mut wrong = Vec::new();
    for (name, value) in &header {
        match rust.get(name) {
            Some(v) if v == value => {}
            other => wrong.push(format!("{}: header {}, sys {:?}", name, value, other)),
        }
    }
    assert!(wrong.is_empty(), "constants differ: {:?}", wrong);
}

#[test]
fn linked_library_matches_declared_version() {
    let mut s = std::ptr::null();
    let num = unsafe { h2pool_sys::h2pool_version(&mut s) };
    let s = unsafe { CStr::from_ptr(s) }.to_str().unwrap();
    assert_eq!(num >> 16, h2pool_sys::H2POOL_VERSION_MAJOR);
    assert_eq!(
        s,
        format!("{}.{}.{}", num >> 16, (num >> 8) & 0xff, num & 0xff)
    );
    let msg =
        unsafe { CStr::from_ptr(h2pool_sys::h2pool_strerror(h2pool_sys::H2POOL_ERR_TIMEOUT)) };
    assert!(!msg.to_bytes().is_empty());
}
