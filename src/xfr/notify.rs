//! NOTIFY (RFC 1996): telling a secondary that a zone changed, over UDP, again
//! with backoff until it answers (a response with QR set, opcode NOTIFY and
//! NOERROR). A newer NOTIFY for the same zone and secondary supersedes one still
//! being retried. Each send has a timeout and each wait a jitter, so nothing here
//! waits on a secondary that is gone, and nothing here blocks anyone else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

use crate::dns::tsig;
use crate::tsig::Key;

/// How long one NOTIFY waits for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest wait between two tries; after `MAX_TRIES` the secondary is left
/// to its SOA refresh timer.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const MAX_TRIES: u32 = 12;
const OPCODE_NOTIFY: u8 = 4;

/// Why one NOTIFY got no good answer.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered with RCODE {0}")]
    Rcode(u8),
}

/// One zone's NOTIFY to one secondary.
pub struct Notify {
    pub target: SocketAddr,
    /// The zone's origin, lower-cased wire form, and as text for logs.
    pub origin: Box<[u8]>,
    pub origin_text: String,
    pub serial: u32,
    pub key: Option<Arc<Key>>,
}

impl Notify {
    /// Sends until answered, given up, or superseded (`generation` moved past `mine`).
    pub async fn run(self, generation: Arc<AtomicU64>, mine: u64) {
        let mut backoff = Duration::from_millis(500);
        for attempt in 1..=MAX_TRIES {
            if generation.load(Ordering::Relaxed) != mine {
                return;
            }
            match self.once().await {
                Ok(()) => {
                    info!(zone = %self.origin_text, target = %self.target, serial = self.serial, "NOTIFY answered");
                    return;
                }
                Err(e) => debug!(zone = %self.origin_text, target = %self.target, attempt, error = %e, "NOTIFY failed"),
            }
            let jitter = Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64 / 4));
            tokio::time::sleep(backoff + jitter).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        warn!(zone = %self.origin_text, target = %self.target, serial = self.serial, "NOTIFY never answered; giving up");
    }

    /// One NOTIFY and its answer.
    async fn once(&self) -> Result<(), NotifyError> {
        let local: SocketAddr = if self.target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let sock = UdpSocket::bind(local).await?;
        let id = fastrand::u16(..);
        let msg = message(id, &self.origin, self.key.as_ref());
        sock.send_to(&msg, self.target).await?;
        let mut buf = vec![0u8; 4096];
        let wait = async {
            loop {
                let (n, from) = sock.recv_from(&mut buf).await?;
                let b = &buf[..n];
                let ours = from == self.target && n >= 12 && b[..2] == id.to_be_bytes();
                if ours && b[2] & 0x80 != 0 && (b[2] >> 3) & 0x0f == OPCODE_NOTIFY {
                    return Ok::<u8, std::io::Error>(b[3] & 0x0f);
                }
            }
        };
        match tokio::time::timeout(ANSWER_TIMEOUT, wait).await {
            Ok(Ok(0)) => Ok(()),
            Ok(Ok(rcode)) => Err(NotifyError::Rcode(rcode)),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(NotifyError::Timeout(ANSWER_TIMEOUT)),
        }
    }
}

/// A NOTIFY for the SOA of `origin` (AA set, RFC 1996 section 3.7), signed with `key`.
fn message(id: u16, origin: &[u8], key: Option<&Arc<Key>>) -> Vec<u8> {
    let mut m = Vec::with_capacity(64 + origin.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[(OPCODE_NOTIFY << 3) | 0x04, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(origin);
    m.extend_from_slice(&[0, 6, 0, 1]);
    if let Some(k) = key {
        tsig::sign_request(k, &mut m, tsig::now());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_parses_as_one() {
        let key = Arc::new(Key::new("k.".parse().unwrap(), crate::tsig::Algorithm::HmacSha256, b"secret"));
        let m = hickory_proto::op::Message::from_vec(&message(7, b"\x01z\x04test\x00", Some(&key))).unwrap();
        assert_eq!(m.metadata.op_code, hickory_proto::op::OpCode::Notify);
        assert!(m.metadata.authoritative);
        assert_eq!(m.queries[0].name().to_ascii(), "z.test.");
        assert!(m.signature.is_some(), "the TSIG is the last record");
    }
}
