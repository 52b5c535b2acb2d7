//! Reading a zone the way the change side needs it (planning, checks, API reads,
//! UPDATE): per name, with the records decoded back into hickory's types. The
//! query path never comes here. A zone is read in effect (its base with the layer
//! of API changes over it) or as its file has it (the base alone: API changes
//! live only in the layer).

use std::collections::BTreeMap;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};

use super::zone::{self, NodeView, RRsetView};
use super::{Zone, wire};

/// RRsets as the API shows them: (name, type) → (TTL, data in presentation form).
pub type RRsetTexts = BTreeMap<(String, String), (u32, Vec<String>)>;

impl Zone {
    /// The node at `name` in effect, if the name exists.
    pub fn node_at(&self, name: &Name) -> Option<NodeView<'_>> {
        self.node(&wire(name))
    }

    /// The node at `name` as the zone file has it.
    pub fn file_node_at(&self, name: &Name) -> Option<NodeView<'_>> {
        self.base.node_in(&self.file_layer, &wire(name))
    }

    /// The RRset `rtype` at `name` in effect: its TTL and records (the SOA too).
    pub fn rrset_at(&self, name: &Name, rtype: RecordType) -> Option<(u32, Vec<RData>)> {
        if rtype == RecordType::SOA {
            return (*name == self.origin).then(|| self.soa_at(self.serial));
        }
        self.node_at(name)?.rrset(u16::from(rtype)).map(decode_rrset)
    }

    /// Every RRset at `name` in effect, the apex SOA included, in type order.
    pub fn rrsets_at(&self, name: &Name) -> Vec<(RecordType, u32, Vec<RData>)> {
        let mut out: Vec<(RecordType, u32, Vec<RData>)> = self
            .node_at(name)
            .map(|n| n.rrsets().map(|r| (RecordType::from(r.rtype), decode_rrset(r))).map(|(t, (l, d))| (t, l, d)))
            .into_iter()
            .flatten()
            .collect();
        if *name == self.origin {
            let (ttl, soa) = self.soa_at(self.serial);
            let at = out.partition_point(|(t, _, _)| u16::from(*t) < 6);
            out.insert(at, (RecordType::SOA, ttl, soa));
        }
        out
    }

    /// The SOA's TTL and record with `serial`.
    pub fn soa_at(&self, serial: u32) -> (u32, Vec<RData>) {
        let mut soa = self.soa_rdata.clone();
        soa.serial = serial;
        (self.soa_ttl, vec![RData::SOA(soa)])
    }

    /// The SOA serial of the zone file.
    pub fn file_serial(&self) -> u32 {
        self.file_serial
    }

    /// Every node in effect, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'_>> {
        zone::nodes_in(&self.base, &self.layer)
    }

    /// How many RRsets are in effect, the SOA included.
    pub fn rrset_count(&self) -> usize {
        zone::rrset_count(&self.base, &self.layer) + 1
    }

    /// The RRsets in effect (`file`: as the zone file has them) as the API shows
    /// them, the SOA with `serial` (`file`: the file's).
    pub fn texts(&self, file: bool, serial: u32) -> RRsetTexts {
        let mut out =
            if file { rrset_texts(zone::nodes_in(&self.base, &self.file_layer)) } else { rrset_texts(self.nodes()) };
        let (ttl, soa) = self.soa_at(if file { self.file_serial } else { serial });
        let data = soa.iter().map(crate::rdata::render).collect();
        out.insert((self.origin.to_ascii(), RecordType::SOA.to_string()), (ttl, data));
        out
    }

    /// This zone, shared, or with `set` as its RRset `rtype` at `name`.
    pub fn with_rrset_at(self: &Arc<Zone>, name: &Name, rtype: RecordType, set: Option<super::EncodedRRset>) -> Zone {
        self.with_rrset(&wire(name), u16::from(rtype), set)
    }
}

/// An RRset's TTL and records, decoded. Every record was encoded from a record
/// that decodes, so one that does not is left out.
pub fn decode_rrset(set: RRsetView<'_>) -> (u32, Vec<RData>) {
    let mut ttl = 0;
    let mut out = Vec::with_capacity(set.count() as usize);
    for rec in set.records() {
        let Some(head) = rec.get(..10) else { continue };
        ttl = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let len = u16::from_be_bytes([head[8], head[9]]);
        let mut decoder = BinDecoder::new(&rec[10..]);
        if let Ok(r) = RData::read(&mut decoder, RecordType::from(set.rtype), Restrict::new(len)) {
            out.push(r);
        }
    }
    (ttl, out)
}

/// The owner name of a node, as hickory's type (lower-cased).
pub fn node_name(node: &NodeView<'_>) -> Option<Name> {
    Name::from_bytes(node.name()).ok()
}

/// The RRsets of `nodes` as the API shows them.
pub fn rrset_texts<'z>(nodes: impl Iterator<Item = NodeView<'z>>) -> RRsetTexts {
    let mut sets = RRsetTexts::new();
    for node in nodes {
        let Some(name) = node_name(&node) else { continue };
        let name = name.to_ascii();
        for set in node.rrsets() {
            let (ttl, data) = decode_rrset(set);
            let data = data.iter().map(crate::rdata::render).collect();
            sets.insert((name.clone(), RecordType::from(set.rtype).to_string()), (ttl, data));
        }
    }
    sets
}
