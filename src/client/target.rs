//! Where the client connects and with which token: `--server` and
//! `--token-file` when given, else the `[admin]` table of the config file. The
//! config is read without its other secrets, and a config with problems
//! elsewhere still names the admin listener: the running server may well be
//! serving an older, valid version of it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use reqwest::Url;

use super::{ClientError, Connection};
use crate::config::{AdminSettings, Secrets};

/// The admin API's base URL and the bearer token (`None`: none configured).
#[derive(Debug, Clone)]
pub struct Target {
    pub base: Url,
    pub token: Option<String>,
}

impl Target {
    pub fn resolve(config: &Path, conn: &Connection) -> Result<Target, ClientError> {
        let base = match &conn.server {
            Some(s) => parse_server(s)?,
            None => listen_url(admin_settings(config)?.listen)?,
        };
        let token_file: Option<PathBuf> = match &conn.token_file {
            Some(f) => Some(f.clone()),
            None => admin_settings(config)?.token_file,
        };
        let token = token_file.map(|f| crate::secrets::read_token(&f)).transpose()?;
        Ok(Target { base, token })
    }
}

fn admin_settings(path: &Path) -> Result<AdminSettings, ClientError> {
    match crate::config::load_all(path, Secrets::Skip) {
        (Some(config), _) => Ok(config.admin),
        (None, problems) => Err(ClientError::Config(
            problems.first().map_or_else(|| format!("cannot read {}", path.display()), ToString::to_string),
        )),
    }
}

/// The URL of a listen address; a wildcard address is reached on loopback.
fn listen_url(listen: SocketAddr) -> Result<Url, ClientError> {
    let ip = match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    parse_server(&SocketAddr::new(ip, listen.port()).to_string())
}

/// `HOST:PORT` (plain HTTP) or an `http://` / `https://` URL, possibly with a
/// path prefix (an API behind a reverse proxy).
fn parse_server(given: &str) -> Result<Url, ClientError> {
    let bad = |problem: String| ClientError::BadServer { given: given.to_string(), problem };
    let text = if given.contains("://") { given.to_string() } else { format!("http://{given}") };
    let url = Url::parse(&text).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("the scheme must be http or https, not {}", url.scheme())));
    }
    if url.host().is_none() {
        return Err(bad("no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query or fragment has no place here".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_forms() {
        assert_eq!(parse_server("127.0.0.1:8053").unwrap().as_str(), "http://127.0.0.1:8053/");
        assert_eq!(parse_server("[::1]:8053").unwrap().as_str(), "http://[::1]:8053/");
        assert_eq!(parse_server("https://lb.example/api").unwrap().as_str(), "https://lb.example/api");
        assert!(parse_server("ftp://x").unwrap_err().to_string().contains("scheme must be http or https"));
        assert!(parse_server("http://x/?a=1").is_err());
        assert!(parse_server("a b:1").is_err());
    }

    #[test]
    fn wildcard_listen_is_reached_on_loopback() {
        assert_eq!(listen_url("0.0.0.0:8053".parse().unwrap()).unwrap().as_str(), "http://127.0.0.1:8053/");
        assert_eq!(listen_url("[::]:8053".parse().unwrap()).unwrap().as_str(), "http://[::1]:8053/");
        assert_eq!(listen_url("192.0.2.1:80".parse().unwrap()).unwrap().as_str(), "http://192.0.2.1/");
    }
}
