//! The parts of [`Responder`] around an answer: how much room a reply has, the
//! zone transfer a request asks for, and the rewrites of a reply already written
//! that rate limiting makes (BADCOOKIE, slip).

use std::net::IpAddr;

use super::Responder;
use crate::dns::wire;
use crate::snapshot::Snapshot;

impl Responder {
    /// The most bytes the reply to the last request may take: 65,535 over TCP,
    /// else the client's EDNS size (at most ours, at least 512), 512 without
    /// EDNS; less the room its TSIG will take.
    pub(super) fn room(&self, snap: &Snapshot, tcp: bool) -> usize {
        let max = if tcp {
            u16::MAX as usize
        } else {
            match &self.query.edns {
                Some(e) => e.payload.min(snap.edns_udp_size).max(512) as usize,
                None => 512,
            }
        };
        max.saturating_sub(self.tsig.reserve())
    }

    /// The zone transfer the last request asks for, when `client` may have it:
    /// AXFR or IXFR of a zone apex in class IN, unsigned or verified, allowed by
    /// the zone's `transfer`. (Such a request is answered REFUSED by
    /// [`Self::respond`]; the TCP path then streams the transfer instead.)
    pub fn transfer(&self, snap: &Snapshot, client: IpAddr) -> Option<crate::dns::xfr::Request> {
        let q = &*self.query;
        let asked = q.qtype == wire::TYPE_AXFR || q.qtype == wire::TYPE_IXFR;
        if !asked || q.opcode != 0 || q.qclass != wire::CLASS_IN || q.no_question {
            return None;
        }
        let key = self.tsig.verified_key();
        if q.tsig_start != 0 && key.is_none() {
            return None;
        }
        let settings = snap.transfer.get(q.qname()).filter(|_| snap.zones.contains_key(q.qname()))?;
        settings
            .allows(client, key.map(|k| &k.name))
            .then(|| crate::dns::xfr::Request { ixfr: q.qtype == wire::TYPE_IXFR, settings: settings.clone() })
    }

    /// Turns the reply just written into `out` into BADCOOKIE (RCODE 23) carrying a
    /// fresh server cookie and no records: what a rate-limited client that sent a
    /// client cookie gets instead of a truncated reply, so that it can retry with the
    /// cookie and be let through (RFC 7873 section 5.2.3).
    pub fn badcookie(&self, out: &mut Vec<u8>) {
        let start = self.opt_start;
        if start == 0 || start + 9 > out.len() || self.query.question_end > start {
            return self.slip(out);
        }
        let mut opt = [0u8; 9];
        opt.copy_from_slice(&out[start..start + 9]);
        opt[5] = (wire::RCODE_BADCOOKIE >> 4) as u8;
        out.truncate(self.query.question_end);
        out.extend_from_slice(&opt);
        out.extend_from_slice(&28u16.to_be_bytes());
        out.extend_from_slice(&wire::OPT_COOKIE.to_be_bytes());
        out.extend_from_slice(&24u16.to_be_bytes());
        out.extend_from_slice(&self.cookie_reply);
        out[2] &= !0x06; // no AA, no TC
        out[3] = (out[3] & 0xf0) | (wire::RCODE_BADCOOKIE & 0x0f) as u8;
        out[6..10].fill(0);
        out[10..12].copy_from_slice(&1u16.to_be_bytes());
    }

    /// Turns the answer just written into `out` into a truncated one (TC=1, the
    /// question only): what response rate limiting "slips" to a limited client.
    pub fn slip(&self, out: &mut Vec<u8>) {
        if out.len() < 12 {
            return;
        }
        let qd = u16::from_be_bytes([out[4], out[5]]);
        if qd == 1 && self.query.question_end <= out.len() {
            out.truncate(self.query.question_end);
        } else {
            out.truncate(12);
        }
        out[2] |= 0x02;
        out[6..12].fill(0);
    }
}
