//! The `dns` check: one query (`qname`, `qtype`) to the member over UDP, asked
//! again over TCP when the reply is truncated, passing when the reply carries
//! `expect_rcode` and (if set) `expect_answer` among its answers. Each query has
//! a random ID; a datagram with another ID, or that is not a response, is
//! ignored (the check's timeout bounds the wait), so a stray or spoofed packet
//! cannot pass it.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::CheckSpec;
use super::error::{ProbeError, Reported};
use super::tcp::{source_for, tcp_connect};
use crate::config::{RCODES, parse_rcode};

/// One member's dns check: the question and what the reply must hold.
pub struct DnsCheck {
    qname: Name,
    qtype: RecordType,
    rcode: u16,
    answer: Option<String>,
}

impl DnsCheck {
    /// The check's fixed parts; `Err` only for a spec that validation refuses.
    pub fn new(spec: &CheckSpec) -> Result<DnsCheck, ProbeError> {
        let bad = |what: &str| ProbeError::Client(format!("{what} cannot be sent"));
        Ok(DnsCheck {
            qname: Name::from_str_relaxed(&spec.qname).map_err(|_| bad("qname"))?,
            qtype: spec.qtype.parse().map_err(|_| bad("qtype"))?,
            rcode: parse_rcode(&spec.expect_rcode).ok_or_else(|| bad("expect_rcode"))?,
            answer: spec.expect_answer.clone(),
        })
    }

    /// One probe: the query, over TCP too when UDP's reply is truncated.
    pub async fn run(&self, target: SocketAddr, source: Option<IpAddr>) -> Result<Reported, ProbeError> {
        let id = fastrand::u16(..);
        let mut query = Message::new(id, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(self.qname.clone(), self.qtype));
        let wire = query.to_vec().map_err(|e| ProbeError::Client(e.to_string()))?;
        let mut reply = udp_exchange(&wire, id, target, source).await?;
        if reply.metadata.truncation {
            reply = tcp_exchange(&wire, id, target, source).await?;
        }
        self.judge(&reply).map(|_| None)
    }

    /// Whether `reply` has the expected code and, if asked, the expected value.
    fn judge(&self, reply: &Message) -> Result<(), ProbeError> {
        let got = u16::from(reply.metadata.response_code);
        if got != self.rcode {
            return Err(ProbeError::Rcode {
                got: rcode_name(reply.metadata.response_code),
                expected: rcode_text(self.rcode),
            });
        }
        match &self.answer {
            Some(want) if !reply.answers.iter().any(|r| same_value(&r.data.to_string(), want)) => {
                Err(ProbeError::Answer(want.clone()))
            }
            _ => Ok(()),
        }
    }
}

/// Whether an answer's text is the value expected: addresses compared as
/// addresses (so `::1` and `0::1` match), names without case or final dot.
fn same_value(got: &str, want: &str) -> bool {
    if let (Ok(a), Ok(b)) = (got.parse::<IpAddr>(), want.parse::<IpAddr>()) {
        return a == b;
    }
    got.trim_end_matches('.').eq_ignore_ascii_case(want.trim_end_matches('.'))
}

fn rcode_text(code: u16) -> String {
    RCODES.get(code as usize).map(|s| s.to_string()).unwrap_or_else(|| code.to_string())
}

fn rcode_name(code: ResponseCode) -> String {
    rcode_text(u16::from(code))
}

fn dns_error(e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Dns(e.to_string())
}

/// The reply to `wire` over UDP: the first datagram from `target` that is a
/// response with `id` (others are skipped).
async fn udp_exchange(wire: &[u8], id: u16, target: SocketAddr, source: Option<IpAddr>) -> Result<Message, ProbeError> {
    let any: IpAddr = if target.is_ipv4() { [0, 0, 0, 0].into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() };
    let local = SocketAddr::new(source_for(source, target.ip()).unwrap_or(any), 0);
    let socket = UdpSocket::bind(local).await.map_err(dns_error)?;
    socket.connect(target).await.map_err(|e| ProbeError::Connect { target, reason: e.to_string() })?;
    socket.send(wire).await.map_err(|e| ProbeError::Connect { target, reason: e.to_string() })?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(|e| ProbeError::Connect { target, reason: e.to_string() })?;
        if let Some(m) = reply_to(&buf[..n], id) {
            return Ok(m);
        }
    }
}

/// The reply to `wire` over TCP (two-byte length before each message).
async fn tcp_exchange(wire: &[u8], id: u16, target: SocketAddr, source: Option<IpAddr>) -> Result<Message, ProbeError> {
    let connect = |e: std::io::Error| ProbeError::Connect { target, reason: e.to_string() };
    let mut tcp = tcp_connect(target, source).await.map_err(connect)?;
    let len = u16::try_from(wire.len()).map_err(dns_error)?;
    let mut out = Vec::with_capacity(wire.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(wire);
    tcp.write_all(&out).await.map_err(dns_error)?;
    let len = tcp.read_u16().await.map_err(dns_error)?;
    let mut buf = vec![0u8; usize::from(len)];
    tcp.read_exact(&mut buf).await.map_err(dns_error)?;
    reply_to(&buf, id).ok_or_else(|| ProbeError::Dns("TCP reply is not a response to the query".to_string()))
}

/// `packet` as a message when it is a response with `id`.
fn reply_to(packet: &[u8], id: u16) -> Option<Message> {
    let m = Message::from_vec(packet).ok()?;
    (m.metadata.id == id && m.metadata.message_type == MessageType::Response).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_as_addresses_or_names() {
        assert!(same_value("2001:db8::1", "2001:db8:0::1"));
        assert!(same_value("ns1.example.", "NS1.example"));
        assert!(!same_value("192.0.2.1", "192.0.2.10"));
    }
}
