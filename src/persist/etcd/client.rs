//! Connecting to etcd: the client made as `[cluster]` says, kept by a
//! [`Connector`] until etcd is reachable, and a full read of the prefix.

use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions, Txn, TxnOp, TxnOpResponse};

use crate::persist::encoding::JOURNAL;

use super::EtcdError;
use crate::config::EtcdSettings;

/// Connects to etcd as `[cluster]` says. Without authentication the connection
/// is lazy (this succeeds while etcd is down); with it, the client logs in here,
/// so this fails while etcd is out of reach: see [`Connector`].
pub async fn connect(s: &EtcdSettings) -> Result<Client, EtcdError> {
    connect_client(s).await.map_err(|e| EtcdError::Connect { endpoints: s.endpoints.join(","), reason: short(&e) })
}

pub(super) async fn connect_client(s: &EtcdSettings) -> Result<Client, etcd_client::Error> {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(s.timeout)
        .with_timeout(s.timeout)
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3));
    if let Some((user, password)) = &s.user {
        // etcd's tokens expire (5 minutes by default): log in again when one does,
        // rather than fail every request from then on.
        opts = opts.with_user(user.clone(), password.clone()).with_auto_token_refresh(true);
    }
    if s.ca_pem.is_some() || s.identity_pem.is_some() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tls = TlsOptions::new();
        if let Some(ca) = &s.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &s.identity_pem {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        opts = opts.with_tls(tls);
    }
    Client::connect(&s.endpoints, Some(opts)).await
}

/// Whether etcd answered and refused these credentials (as opposed to not
/// answering): a configuration error, not an outage.
pub(super) fn rejected_credentials(e: &etcd_client::Error) -> bool {
    match e {
        // gRPC status codes 7 (PERMISSION_DENIED) and 16 (UNAUTHENTICATED); a wrong
        // password is INVALID_ARGUMENT with this message.
        etcd_client::Error::GRpcStatus(st) => {
            st.message().contains("authentication failed") || matches!(st.code() as i32, 7 | 16)
        }
        _ => false,
    }
}

/// The etcd client, made on first use and kept. A server must start and serve
/// its files while etcd is out of reach, but a client with credentials cannot
/// be made then (it logs in while connecting), so every user of the client asks
/// the connector, which connects (and logs in) when etcd is back.
#[derive(Clone)]
pub struct Connector {
    settings: std::sync::Arc<EtcdSettings>,
    client: std::sync::Arc<tokio::sync::Mutex<Option<Client>>>,
}

impl Connector {
    pub fn new(settings: &EtcdSettings) -> Connector {
        Connector { settings: std::sync::Arc::new(settings.clone()), client: Default::default() }
    }

    /// The client, connecting first if there is none yet.
    pub async fn get(&self) -> Result<Client, etcd_client::Error> {
        let mut slot = self.client.lock().await;
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(self.settings.timeout, connect_client(&self.settings))
            .await
            .map_err(|_| etcd_client::Error::InvalidArgs(format!("no answer within {:?}", self.settings.timeout)))??;
        *slot = Some(c.clone());
        Ok(c)
    }
}

/// Reads every key under `prefix`: (relative key, value, mod revision) and the
/// store's revision.
pub async fn load_all(client: &mut Client, prefix: &str) -> Result<(Vec<(String, Vec<u8>, i64)>, i64), EtcdError> {
    load_all_raw(client, prefix).await.map_err(|e| EtcdError::Read { reason: short(&e) })
}

pub(super) async fn load_all_raw(
    client: &mut Client,
    prefix: &str,
) -> Result<(Vec<(String, Vec<u8>, i64)>, i64), etcd_client::Error> {
    // Every key but the nodes' IXFR journals (`journal/…`, up to megabytes per
    // node and zone, read only by their own node at start): the ranges before
    // and after them, read in one transaction, so at one revision.
    let journal = format!("{prefix}{JOURNAL}");
    let after = format!("{prefix}{}0", JOURNAL.trim_end_matches('/'));
    let txn = Txn::new().and_then(vec![
        TxnOp::get(prefix, Some(GetOptions::new().with_range(journal))),
        TxnOp::get(after, Some(GetOptions::new().with_range(range_end(prefix.as_bytes())))),
    ]);
    let resp = client.txn(txn).await?;
    let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    let mut entries = Vec::new();
    for op in resp.op_responses() {
        let TxnOpResponse::Get(get) = op else { continue };
        entries.extend(get.kvs().iter().filter_map(|kv| {
            let key = std::str::from_utf8(kv.key()).ok()?.strip_prefix(prefix)?.to_string();
            Some((key, kv.value().to_vec(), kv.mod_revision()))
        }));
    }
    Ok((entries, revision))
}

/// The end of the range of keys starting with `prefix` (as etcd's `--prefix`).
fn range_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|b| *b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

/// An etcd error without the transport's debug dump.
pub(super) fn short(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => s.message().to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// The end of a prefix's range, as etcd's `--prefix` computes it.
    #[test]
    fn range_end_of_a_prefix() {
        assert_eq!(super::range_end(b"/lbdns/"), b"/lbdns0");
        assert_eq!(super::range_end(b"a\xff\xff"), b"b");
        assert_eq!(super::range_end(b"\xff"), b"\0");
    }
}
