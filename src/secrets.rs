//! Reading secret files: the admin bearer token, the DNS cookie secret, the etcd
//! password, TSIG key secrets and health-check request headers. Each reader checks what it reads (length, format, size) and names the
//! file in its error, so that `lbdns check`, start-up and reload say the same thing.
//!
//! A leaf: imports nothing from the crate. Nothing here logs the secret itself.

use std::path::Path;

/// The shortest token accepted: 128 bits written as hex.
pub const MIN_TOKEN_CHARS: usize = 32;

/// How to make a good token, for error messages.
const MAKE_TOKEN: &str = "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > FILE";

/// The largest cookie secret file read: it holds 32 hex digits, so anything bigger
/// is the wrong file.
const MAX_COOKIE_FILE: u64 = 4096;

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("token file {path} is empty; make a token with `{MAKE_TOKEN}`")]
    Empty { path: String },
    #[error(
        "token file {path}: the token has {chars} characters, at least {MIN_TOKEN_CHARS} are needed \
         (128 bits as hex); make one with `{MAKE_TOKEN}`"
    )]
    Short { path: String, chars: usize },
}

/// Reads the bearer token from `path` (trimmed); refuses one shorter than
/// [`MIN_TOKEN_CHARS`]. Warns when others can read it.
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read { path: shown.clone(), source })?;
    let token = text.trim().to_string();
    let chars = token.chars().count();
    if chars == 0 {
        return Err(TokenError::Empty { path: shown });
    }
    if chars < MIN_TOKEN_CHARS {
        return Err(TokenError::Short { path: shown, chars });
    }
    if readable_by_others(path) {
        tracing::warn!(file = %path.display(), "the admin token file is readable by other users; chmod 600 it");
    }
    Ok(token)
}

/// Whether users other than the owner may read `path` (never on non-Unix systems).
fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Why a cookie secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CookieSecretError {
    #[error("cannot read cookie_secret_file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Format { path: String, source: BadCookieSecret },
}

/// The text is not a cookie secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cookie secret must be 32 hexadecimal digits (16 bytes)")]
pub struct BadCookieSecret;

/// Reads the cookie secret from `path`: a regular file of at most 4 KiB holding
/// 32 hexadecimal digits.
pub fn read_cookie_secret(path: &Path) -> Result<[u8; 16], CookieSecretError> {
    let shown = || path.display().to_string();
    let text = std::fs::metadata(path)
        .and_then(|m| {
            if m.is_file() && m.len() <= MAX_COOKIE_FILE {
                std::fs::read_to_string(path)
            } else {
                Err(std::io::Error::other("not a regular file of at most 4 KiB"))
            }
        })
        .map_err(|source| CookieSecretError::Read { path: shown(), source })?;
    parse_cookie_secret(&text).map_err(|source| CookieSecretError::Format { path: shown(), source })
}

/// Reads a secret written as 32 hexadecimal digits (surrounding whitespace ignored).
pub fn parse_cookie_secret(text: &str) -> Result<[u8; 16], BadCookieSecret> {
    let t = text.trim();
    if t.len() != 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BadCookieSecret);
    }
    let mut s = [0u8; 16];
    for (i, byte) in s.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| BadCookieSecret)?;
    }
    Ok(s)
}

/// The largest headers file read: a few header lines.
const MAX_HEADERS_FILE: u64 = 64 * 1024;

/// Why a health check's `headers_file` cannot be used; a bad line is named as
/// FILE:LINE.
#[derive(Debug, thiserror::Error)]
pub enum HeadersFileError {
    #[error("cannot read headers_file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}: {problem}")]
    Line { path: String, line: usize, problem: BadHeader },
}

/// A header a health check cannot send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadHeader {
    #[error("expected `Name: value`")]
    NoColon,
    #[error("{0:?} is not a header name")]
    Name(String),
    #[error("the value of {0} is not a valid header value")]
    Value(String),
}

/// Checks that `name: value` can be sent as an HTTP header.
pub fn check_header(name: &str, value: &str) -> Result<(), BadHeader> {
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| BadHeader::Name(name.to_string()))?;
    http::HeaderValue::from_str(value).map_err(|_| BadHeader::Value(name.to_string()))?;
    Ok(())
}

/// Reads a health check's `headers_file`: `Name: value` lines; blank lines and
/// lines starting with `#` are skipped; the value is trimmed.
pub fn read_headers(path: &Path) -> Result<Vec<(String, String)>, HeadersFileError> {
    let shown = || path.display().to_string();
    let text = std::fs::metadata(path)
        .and_then(|m| {
            if m.is_file() && m.len() <= MAX_HEADERS_FILE {
                std::fs::read_to_string(path)
            } else {
                Err(std::io::Error::other("not a regular file of at most 64 KiB"))
            }
        })
        .map_err(|source| HeadersFileError::Read { path: shown(), source })?;
    parse_headers(&text).map_err(|(line, problem)| HeadersFileError::Line { path: shown(), line, problem })
}

/// The headers of a headers file's text, or the first bad line (1-based) and why.
pub fn parse_headers(text: &str) -> Result<Vec<(String, String)>, (usize, BadHeader)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or((i + 1, BadHeader::NoColon))?;
        let (name, value) = (name.trim(), value.trim());
        check_header(name, value).map_err(|e| (i + 1, e))?;
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

/// The password in a password file's bytes: without the trailing line break (other
/// whitespace is part of the password). The caller reads the file, as it may be
/// told not to read secrets at all (`lbdns check --no-secrets`).
pub fn password(file: &[u8]) -> String {
    String::from_utf8_lossy(file).trim_end_matches(['\n', '\r']).to_string()
}

/// The largest TSIG secret file read: a key clause is a few lines.
const MAX_TSIG_FILE: u64 = 64 * 1024;

/// What a TSIG `secret_file` holds: the secret, and the name and algorithm of the
/// BIND `key` clause it came in (for the caller to compare with its entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigSecret {
    pub secret: Vec<u8>,
    /// `(name, algorithm)` as the clause writes them; `None` for a bare base64 line.
    pub clause: Option<(String, String)>,
}

/// Why a TSIG secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TsigSecretError {
    #[error("cannot read secret_file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("secret_file {path}: {source}")]
    Format { path: String, source: BadTsigSecret },
}

/// The text is neither one base64 line nor a BIND `key` clause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadTsigSecret {
    #[error("the file is empty; make a key with `lbdns tsig-keygen NAME`")]
    Empty,
    #[error("the secret is not base64: {0}")]
    Base64(String),
    #[error("the secret is empty")]
    NoBytes,
    #[error("not a BIND key clause (key \"NAME\" {{ algorithm ALG; secret \"BASE64\"; }};): {0}")]
    Clause(&'static str),
}

/// Reads a TSIG secret from `path`: a regular file of at most 64 KiB holding the
/// base64 secret on one line, or a BIND `key` clause (what `tsig-keygen` prints).
pub fn read_tsig_secret(path: &Path) -> Result<TsigSecret, TsigSecretError> {
    let shown = || path.display().to_string();
    let text = std::fs::metadata(path)
        .and_then(|m| {
            if m.is_file() && m.len() <= MAX_TSIG_FILE {
                std::fs::read_to_string(path)
            } else {
                Err(std::io::Error::other("not a regular file of at most 64 KiB"))
            }
        })
        .map_err(|source| TsigSecretError::Read { path: shown(), source })?;
    parse_tsig_secret(&text).map_err(|source| TsigSecretError::Format { path: shown(), source })
}

/// Parses a TSIG secret file's text (see [`read_tsig_secret`]).
pub fn parse_tsig_secret(text: &str) -> Result<TsigSecret, BadTsigSecret> {
    let t = text.trim();
    if t.is_empty() {
        return Err(BadTsigSecret::Empty);
    }
    // Base64 has no braces: a brace means a key clause.
    if t.contains('{') {
        return parse_key_clause(t);
    }
    Ok(TsigSecret { secret: decode_base64(t)?, clause: None })
}

fn decode_base64(t: &str) -> Result<Vec<u8>, BadTsigSecret> {
    use base64::Engine;
    let secret =
        base64::engine::general_purpose::STANDARD.decode(t).map_err(|e| BadTsigSecret::Base64(e.to_string()))?;
    if secret.is_empty() {
        return Err(BadTsigSecret::NoBytes);
    }
    Ok(secret)
}

/// `key "NAME" { algorithm ALG; secret "BASE64"; };`, in any layout, with `#`,
/// `//` and `/* */` comments as BIND allows.
fn parse_key_clause(t: &str) -> Result<TsigSecret, BadTsigSecret> {
    let text = strip_comments(t);
    let rest = text.trim_start().strip_prefix("key").ok_or(BadTsigSecret::Clause("it must start with `key`"))?;
    let (name, rest) = quoted(rest.trim_start()).ok_or(BadTsigSecret::Clause("the key name must be quoted"))?;
    let body = rest.trim_start().strip_prefix('{').ok_or(BadTsigSecret::Clause("`{` must follow the name"))?;
    let close = body.find('}').ok_or(BadTsigSecret::Clause("`}` is missing"))?;
    if !matches!(body[close + 1..].trim(), ";" | "") {
        return Err(BadTsigSecret::Clause("one key clause per file, ended by `};`"));
    }
    let (mut algorithm, mut secret) = (None, None);
    for statement in body[..close].split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (word, value) = statement.split_once(char::is_whitespace).unwrap_or((statement, ""));
        let value = value.trim();
        match word {
            "algorithm" => algorithm = Some(value.trim_matches('"').to_string()),
            "secret" => secret = Some(quoted(value).map(|(s, _)| s).unwrap_or(value).to_string()),
            _ => return Err(BadTsigSecret::Clause("only `algorithm` and `secret` go in a key clause")),
        }
    }
    let algorithm = algorithm.ok_or(BadTsigSecret::Clause("`algorithm` is missing"))?;
    let secret = secret.ok_or(BadTsigSecret::Clause("`secret` is missing"))?;
    Ok(TsigSecret { secret: decode_base64(&secret)?, clause: Some((name.to_string(), algorithm)) })
}

/// The text of a leading `"..."` and what follows it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('"')?;
    let end = inner.find('"')?;
    Some((&inner[..end], &inner[end + 1..]))
}

/// `text` without BIND comments (`#` and `//` to the end of the line, `/* */`).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else if rest.starts_with('#') || rest.starts_with("//") {
            rest = rest.find('\n').map_or("", |i| &rest[i..]);
        } else if rest.starts_with('"') {
            // A quoted string is copied whole: a secret may hold `//`.
            let end = rest[1..].find('"').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_files_are_name_value_lines_and_bad_lines_are_named() {
        let ok = parse_headers("# token\nAuthorization: Bearer abc:def\n\nX-Probe:  1 \n").unwrap();
        assert_eq!(ok, [("Authorization".into(), "Bearer abc:def".into()), ("X-Probe".into(), "1".into())]);
        assert_eq!(parse_headers("A: 1\nno colon here\n"), Err((2, BadHeader::NoColon)));
        assert_eq!(parse_headers("Bad Name: 1\n"), Err((1, BadHeader::Name("Bad Name".into()))));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("h");
        std::fs::write(&f, "A: 1\nB 2\n").unwrap();
        let e = read_headers(&f).unwrap_err().to_string();
        assert_eq!(e, format!("{}:2: expected `Name: value`", f.display()));
    }

    #[test]
    fn cookie_secrets_are_32_hex_digits() {
        let s = parse_cookie_secret(" e5e973e5a6b2a43f48e7dc849e37bfcf\n").unwrap();
        assert_eq!(s[0], 0xe5);
        assert_eq!(s[15], 0xcf);
        assert_eq!(parse_cookie_secret("e5e973e5"), Err(BadCookieSecret));
        assert_eq!(parse_cookie_secret("z5e973e5a6b2a43f48e7dc849e37bfcf"), Err(BadCookieSecret));
    }

    #[test]
    fn short_and_empty_tokens_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(read_token(&f), Err(TokenError::Empty { .. })));
        std::fs::write(&f, "abc\n").unwrap();
        let e = read_token(&f).unwrap_err();
        assert!(e.to_string().contains(&f.display().to_string()), "{e}");
        std::fs::write(&f, format!("{}\n", "a".repeat(MIN_TOKEN_CHARS))).unwrap();
        assert_eq!(read_token(&f).unwrap(), "a".repeat(MIN_TOKEN_CHARS));
    }

    #[test]
    fn passwords_keep_inner_whitespace() {
        assert_eq!(password(b" pass word \r\n"), " pass word ");
    }

    #[test]
    fn tsig_secrets_are_base64_lines_or_key_clauses() {
        let bare = parse_tsig_secret("c2VjcmV0\n").unwrap();
        assert_eq!((bare.secret.as_slice(), bare.clause), (&b"secret"[..], None));
        let clause =
            "# made by tsig-keygen\nkey \"update-key.\" {\n\talgorithm hmac-sha512;\n\tsecret \"c2VjcmV0\"; // s\n};\n";
        let k = parse_tsig_secret(clause).unwrap();
        assert_eq!(k.secret, b"secret");
        assert_eq!(k.clause, Some(("update-key.".to_string(), "hmac-sha512".to_string())));
        assert_eq!(parse_tsig_secret(" \n"), Err(BadTsigSecret::Empty));
        assert!(matches!(parse_tsig_secret("not base64!"), Err(BadTsigSecret::Base64(_))));
        assert!(matches!(parse_tsig_secret("key \"k\" { algorithm hmac-sha256; };"), Err(BadTsigSecret::Clause(_))));
        assert!(matches!(parse_tsig_secret("key k { secret \"c2VjcmV0\"; };"), Err(BadTsigSecret::Clause(_))));
    }

    #[test]
    fn tsig_secret_files_are_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("update.key");
        std::fs::write(&f, "%%%\n").unwrap();
        let e = read_tsig_secret(&f).unwrap_err().to_string();
        assert!(e.contains(&f.display().to_string()) && e.contains("base64"), "{e}");
        let e = read_tsig_secret(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
