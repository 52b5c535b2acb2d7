//! Zone transfers out over TCP: AXFR (RFC 5936) and IXFR (RFC 1995).
//!
//! The zone is read from the snapshot the request found (so one transfer is one
//! version of the zone, whatever is published meanwhile), node by node, and
//! streamed in messages of up to 64 KiB: the SOA first and last, owner names
//! compressed against the question and the names already in the message (RDATA
//! is sent as held, uncompressed), each message TSIG-signed when the request was
//! (RFC 8945 section 5.3.1). IXFR answers from the journal when it reaches back to
//! the client's serial, else with the whole zone (RFC 1995 section 4). This is
//! not the query path: a transfer may allocate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::RData;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::info;

use super::tsig::{self, StreamSigner};
use super::wire;
use crate::config::TransferSettings;
use crate::journal::{Change, Journals};
use crate::snapshot::{RRsetView, Snapshot, Zone, transfer};

/// A transfer a request asked for and may have.
pub struct Request {
    pub ixfr: bool,
    pub settings: Arc<TransferSettings>,
}

/// One reply message being filled.
struct Message {
    out: Vec<u8>,
    question_end: usize,
    /// Names (and suffixes) written in this message, with their offsets.
    names: HashMap<Box<[u8]>, u16>,
    an: u16,
    /// The largest message, less the room its TSIG needs.
    limit: usize,
}

impl Message {
    /// A reply to `packet` (its question ends at `question_end`): the header
    /// (QR, AA; RD echoed) and the question.
    fn new(packet: &[u8], question_end: usize, qname: &[u8], limit: usize) -> Message {
        let mut out = Vec::with_capacity(limit.min(16 * 1024));
        out.extend_from_slice(&packet[..2]);
        out.extend_from_slice(&[0x84 | (packet[2] & 0x01), 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&packet[12..question_end]);
        let mut m = Message { out, question_end, names: HashMap::new(), an: 0, limit };
        m.names.insert(qname.into(), 12);
        m
    }

    fn reset(&mut self, qname: &[u8]) {
        self.out.truncate(self.question_end);
        // The counts, ARCOUNT included (the last message's TSIG counted there).
        self.out[6..12].fill(0);
        self.names.clear();
        self.names.insert(qname.into(), 12);
        self.an = 0;
    }

    fn fits(&self, owner: &[u8], record: &[u8]) -> bool {
        self.out.len() + owner.len() + record.len() <= self.limit
    }

    /// Writes `owner` (lower-cased wire), compressed, then `record`.
    fn push(&mut self, owner: &[u8], record: &[u8]) {
        let mut pos = 0usize;
        while pos < owner.len() && owner[pos] != 0 {
            if let Some(&at) = self.names.get(&owner[pos..]) {
                self.out.extend_from_slice(&(0xc000 | at).to_be_bytes());
                self.out.extend_from_slice(record);
                self.an += 1;
                return;
            }
            if self.out.len() < 0x3fff {
                self.names.insert(owner[pos..].into(), self.out.len() as u16);
            }
            let end = pos + 1 + owner[pos] as usize;
            self.out.extend_from_slice(&owner[pos..end.min(owner.len())]);
            pos = end;
        }
        self.out.push(0);
        self.out.extend_from_slice(record);
        self.an += 1;
    }

    fn finish(&mut self, rcode: u8) {
        self.out[3] = rcode;
        self.out[6..8].copy_from_slice(&self.an.to_be_bytes());
    }
}

/// Streams messages to the client.
struct Sender<'a, S> {
    stream: &'a mut S,
    msg: Message,
    qname: Box<[u8]>,
    signer: StreamSigner<'a>,
    framed: Vec<u8>,
    deadline: Duration,
}

impl<S: AsyncWrite + Unpin> Sender<'_, S> {
    async fn record(&mut self, owner: &[u8], record: &[u8]) -> std::io::Result<()> {
        if self.msg.an > 0 && !self.msg.fits(owner, record) {
            self.flush().await?;
        }
        self.msg.push(owner, record);
        Ok(())
    }

    /// Sends the message filled so far (signed) and starts the next.
    async fn flush(&mut self) -> std::io::Result<()> {
        self.msg.finish(0);
        self.send().await
    }

    async fn send(&mut self) -> std::io::Result<()> {
        self.signer.sign(&mut self.msg.out, tsig::now());
        self.framed.clear();
        self.framed.extend_from_slice(&(self.msg.out.len() as u16).to_be_bytes());
        self.framed.extend_from_slice(&self.msg.out);
        match tokio::time::timeout(self.deadline, self.stream.write_all(&self.framed)).await {
            Ok(r) => r?,
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        }
        self.msg.reset(&self.qname);
        Ok(())
    }

    /// The whole zone between two copies of its SOA.
    async fn zone(&mut self, snap: &Snapshot, zone: &Zone, req: &Request) -> std::io::Result<()> {
        let soa = first_record(zone.soa());
        self.record(&zone.origin_wire, soa).await?;
        let mut buf = Vec::new();
        let nodes: Vec<_> = zone.nodes().collect();
        for node in nodes {
            buf.clear();
            transfer::node_records(snap, node, req.settings.pools, &mut buf);
            for rec in RRsetView::new(0, 0, &buf).records() {
                self.record(node.name(), rec).await?;
            }
        }
        self.record(&zone.origin_wire, soa).await
    }

    /// The changes, between two copies of the SOA they end at (RFC 1995 section 4).
    async fn changes(&mut self, origin: &[u8], changes: &[Arc<Change>]) -> std::io::Result<()> {
        let Some(last) = changes.last() else { return Ok(()) };
        self.record(origin, &last.to_soa).await?;
        for c in changes {
            self.record(origin, &c.from_soa).await?;
            for (owner, rec) in &c.removed {
                self.record(owner, rec).await?;
            }
            self.record(origin, &c.to_soa).await?;
            for (owner, rec) in &c.added {
                self.record(owner, rec).await?;
            }
        }
        self.record(origin, &last.to_soa).await
    }
}

fn first_record(rs: RRsetView<'_>) -> &[u8] {
    rs.records().next().unwrap_or_default()
}

/// A transfer request as received: the packet, as parsed, and its TSIG state.
pub struct Asked<'a> {
    pub peer: std::net::IpAddr,
    pub packet: &'a [u8],
    pub query: &'a wire::Query,
    pub tsig: &'a tsig::Tsig,
}

/// Answers a transfer request from `snap`, writing every message to `stream`
/// within `deadline` each. An error is the stream's: the connection is to be
/// closed.
pub async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    snap: Arc<Snapshot>,
    asked: Asked<'_>,
    journals: &Journals,
    req: Request,
    deadline: Duration,
) -> std::io::Result<()> {
    let Asked { peer, packet, query: q, tsig } = asked;
    let Some(zone) = snap.zones.get(q.qname()).cloned() else { return Ok(()) };
    let limit = u16::MAX as usize - tsig.reserve();
    let msg = Message::new(packet, q.question_end, q.qname(), limit);
    let mut s = Sender { stream, msg, qname: q.qname().into(), signer: tsig.stream(), framed: Vec::new(), deadline };
    let key = tsig.verified_key().map_or_else(|| "-".to_string(), |k| k.name.to_ascii());
    if !req.ixfr {
        info!(zone = %zone.origin, %peer, %key, serial = zone.serial, "AXFR");
        s.zone(&snap, &zone, &req).await?;
        return s.flush().await;
    }
    let Some(serial) = client_serial(packet) else {
        // RFC 1995 section 3: an IXFR query carries the client's SOA.
        s.msg.out.truncate(12);
        s.msg.out[5] = 0;
        s.msg.finish(wire::RCODE_FORMERR);
        return s.send().await;
    };
    if serial_ge(serial, zone.serial) {
        // Up to date (or ahead): the current SOA alone.
        info!(zone = %zone.origin, %peer, %key, serial, "IXFR: up to date");
        s.record(&zone.origin_wire, first_record(zone.soa())).await?;
    } else if let Some(changes) = journals.since(&zone.origin_wire, serial) {
        let to = changes.last().map_or(serial, |c| c.to);
        info!(zone = %zone.origin, %peer, %key, from = serial, to, changes = changes.len(), "IXFR: incremental");
        s.changes(&zone.origin_wire, &changes).await?;
    } else {
        info!(zone = %zone.origin, %peer, %key, from = serial, to = zone.serial, "IXFR: the whole zone (serial not in the journal)");
        s.zone(&snap, &zone, &req).await?;
    }
    s.flush().await
}

/// The serial of the SOA in an IXFR request's authority section.
fn client_serial(packet: &[u8]) -> Option<u32> {
    let m = hickory_proto::op::Message::from_vec(packet).ok()?;
    m.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// `a` is `b` or after it in serial number arithmetic (RFC 1982).
fn serial_ge(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}
