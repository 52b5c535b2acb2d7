//! Reading secret files: the admin bearer token, the DNS cookie secret and the etcd
//! password. Each reader checks what it reads (length, format, size) and names the
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

/// The password in a password file's bytes: without the trailing line break (other
/// whitespace is part of the password). The caller reads the file, as it may be
/// told not to read secrets at all (`lbdns check --no-secrets`).
pub fn password(file: &[u8]) -> String {
    String::from_utf8_lossy(file).trim_end_matches(['\n', '\r']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
