//! The immutable [`Snapshot`] that every query reads, and how it is built.
//!
//! Names are keyed by their lower-cased wire form, and records are pre-encoded
//! (type, class, TTL, RDLENGTH, RDATA with uncompressed names) so that answering is
//! hash lookups and byte copies. Pools are held apart in [`Pools`], which zone nodes
//! index into: a health change replaces its pools and the chunks holding them, and
//! shares every other pool and every zone unchanged.

mod build;
mod pools;

pub use build::{Settings, build, rebuild_pools};
pub use pools::Pools;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData};
use rustc_hash::FxHashMap;

use crate::config::{AllDown, PoolDef};
use crate::counters::PoolCounters;
use crate::geoip::GeoDb;
use crate::policy::{self, Candidate, Policy};
use crate::problem::Problem;
use crate::rdata::RecordError;
use crate::zone::{ZoneData, ZoneRecord};

/// Everything the query path reads. Built by the writer, never mutated.
#[derive(Debug)]
pub struct Snapshot {
    /// Zones by lower-cased wire origin; shared between snapshots that differ
    /// only in pools.
    pub zones: Arc<FxHashMap<Box<[u8]>, Arc<Zone>>>,
    pub pools: Pools,
    pub edns_udp_size: u16,
    /// `[regions]`, for building `geo` pools.
    pub regions: Arc<Regions>,
    /// The GeoIP database, for `geo` pools.
    pub geoip: Option<Arc<GeoDb>>,
    /// `[[tsig]]` keys that signed queries are verified with.
    pub tsig: Arc<crate::tsig::Keys>,
}

impl Snapshot {
    /// No zones and no pools: what is published until the first snapshot is built
    /// (nothing answers from it; the sockets are not served before then).
    pub fn empty(edns_udp_size: u16) -> Snapshot {
        Snapshot {
            zones: Arc::default(),
            pools: Pools::default(),
            edns_udp_size,
            regions: Arc::default(),
            geoip: None,
            tsig: Arc::default(),
        }
    }

    /// This snapshot's settings with other zones and pools: the next snapshot
    /// after a change that touched only those.
    pub fn with_parts(&self, zones: Arc<FxHashMap<Box<[u8]>, Arc<Zone>>>, pools: Pools) -> Snapshot {
        Snapshot {
            zones,
            pools,
            edns_udp_size: self.edns_udp_size,
            regions: self.regions.clone(),
            geoip: self.geoip.clone(),
            tsig: self.tsig.clone(),
        }
    }
}

/// `[regions]`: location key -> region names, most preferred first.
pub type Regions = BTreeMap<String, Vec<String>>;

#[derive(Debug)]
pub struct Zone {
    pub origin: Name,
    pub origin_wire: Box<[u8]>,
    pub labels: usize,
    /// Every name; shared by zones that differ only in their SOA serial.
    pub nodes: Arc<FxHashMap<Box<[u8]>, Node>>,
    /// The apex SOA RRset (kept out of the apex node, so that a serial bump
    /// re-encodes one record and shares every node).
    pub soa: RRset,
    /// The apex SOA encoded for negative answers: TTL = min(SOA TTL, MINIMUM).
    pub negative_soa: Box<[u8]>,
    pub serial: u32,
    soa_rdata: SOA,
    soa_ttl: u32,
}

impl Zone {
    /// This zone with its SOA serial advanced by `bump` from the zone file's.
    pub fn with_serial_bump(&self, base_serial: u32, bump: u32) -> Result<Zone, RecordError> {
        let mut soa = self.soa_rdata.clone();
        soa.serial = base_serial.wrapping_add(bump);
        let (rrset, negative) = encode_soa(&soa, self.soa_ttl)?;
        Ok(Zone {
            origin: self.origin.clone(),
            origin_wire: self.origin_wire.clone(),
            labels: self.labels,
            nodes: self.nodes.clone(),
            soa: rrset,
            negative_soa: negative,
            serial: soa.serial,
            soa_rdata: soa,
            soa_ttl: self.soa_ttl,
        })
    }
}

fn encode_soa(soa: &SOA, ttl: u32) -> Result<(RRset, Box<[u8]>), RecordError> {
    let rdata = RData::SOA(soa.clone());
    let rec = encode_record(ttl, &rdata)?;
    let negative = encode_record(ttl.min(soa.minimum), &rdata)?.into_boxed_slice();
    let rrset =
        RRset { rtype: 6, lens: vec![rec.len() as u16].into(), data: rec.into_boxed_slice(), ..RRset::default() };
    Ok((rrset, negative))
}

/// A name that exists in a zone (empty non-terminals included, with no RRsets).
#[derive(Debug, Default)]
pub struct Node {
    /// The zone apex (whose SOA lives in `Zone::soa`).
    pub apex: bool,
    pub rrsets: Vec<RRset>,
    /// NS records at a name below the apex: a zone cut.
    pub delegation: bool,
    /// Index into `Snapshot::pools` when this name is a pool.
    pub pool: Option<u32>,
}

impl Node {
    pub fn rrset(&self, rtype: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|r| r.rtype == rtype)
    }
}

/// One RRset, each record encoded from TYPE to the end of RDATA.
#[derive(Debug, Clone, Default)]
pub struct RRset {
    pub rtype: u16,
    pub data: Box<[u8]>,
    /// Length of each record in `data`.
    pub lens: Box<[u16]>,
    /// For CNAME, NS, MX and SRV: the target of each record, lower-cased wire.
    pub targets: Vec<Box<[u8]>>,
    /// For NS, MX and SRV: the additional data of the targets, in record order.
    pub extras: Box<[Extra]>,
}

/// The in-zone addresses of one NS, MX or SRV target, found when the snapshot is
/// built so that answering copies them (RFC 1035 section 4.3.2 step 6).
#[derive(Debug, Clone)]
pub struct Extra {
    /// Which record of the RRset names the target.
    pub record: u16,
    /// Where the target name starts in that record's RDATA: the owner of the
    /// additional records is a compression pointer to it.
    pub name_at: u16,
    /// The target, lower-cased wire, for when no pointer can reach it.
    pub target: Box<[u8]>,
    /// The target is at or below the RRset's owner: for a delegation, glue that a
    /// referral must carry (RFC 9471); everything else is optional.
    pub in_domain: bool,
    /// The target's A and AAAA RRsets (a wildcard's, expanded to the target).
    pub rrsets: Box<[RRset]>,
}

impl RRset {
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        let mut off = 0usize;
        self.lens.iter().map(move |&l| {
            let r = &self.data[off..off + l as usize];
            off += l as usize;
            r
        })
    }
}

/// A pool as the query path sees it.
#[derive(Debug)]
pub struct Pool {
    pub def: Arc<PoolDef>,
    pub name_text: String,
    pub policy: Arc<dyn Policy>,
    pub candidates: Box<[Candidate]>,
    pub members: Box<[PoolMember]>,
    /// [IPv4, IPv6].
    pub family: [Family; 2],
    pub max_answers: usize,
    pub all_down: AllDown,
    /// The TTL of the pool's records.
    pub ttl: u32,
    /// Shared with the pool's previous versions, so counts survive rebuilds.
    pub counters: Arc<PoolCounters>,
}

/// What a pool answers for one family, decided by [`Pool::select`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The members whose indices were written to `order`, in answer order.
    Members,
    /// The pool's fallback records of that family.
    Fallback,
    /// Nothing (NODATA).
    NoData,
    /// SERVFAIL.
    ServFail,
}

impl Pool {
    /// Chooses the answer for family `f` (0 = IPv4, 1 = IPv6) for a client whose
    /// address (ECS already applied and truncated) is `client`: at most `fit`
    /// members (what the reply has room for; at least one is always chosen) and at
    /// most `max_answers`. Returns the selection, whether no member was eligible
    /// (`all_down`), and the client's location if the policy looked it up.
    /// Allocation-free once `order` and `scratch` have grown.
    pub fn select(
        &self,
        f: usize,
        client: IpAddr,
        geoip: Option<&GeoDb>,
        fit: usize,
        scratch: &mut crate::policy::Scratch,
        order: &mut Vec<u16>,
    ) -> (Selection, bool, Option<crate::geoip::Location>) {
        order.clear();
        let fam = &self.family[f];
        if fam.all.is_empty() {
            return (Selection::NoData, false, None);
        }
        let (list, all_down): (&[u16], bool) = if !fam.eligible.is_empty() {
            (&fam.eligible, false)
        } else {
            match self.all_down {
                AllDown::ServeAll if !fam.enabled.is_empty() => (&fam.enabled, true),
                AllDown::ServeAll | AllDown::Empty => return (Selection::NoData, true, None),
                AllDown::Servfail => return (Selection::ServFail, true, None),
                AllDown::Fallback if fam.fallback_addrs.is_empty() => return (Selection::NoData, true, None),
                AllDown::Fallback => return (Selection::Fallback, true, None),
            }
        };
        let wanted = if self.max_answers == 0 { list.len() } else { self.max_answers.min(list.len()) };
        let limit = wanted.min(fit).max(1);
        let client_key = if self.policy.client_dependent() { crate::net::client_key(client) } else { 0 };
        let location = if self.policy.needs_location() { geoip.map(|db| db.locate(client)) } else { None };
        let pick = policy::Pick { members: &self.candidates, eligible: list, family: f, client_key, limit, location };
        self.policy.order(&pick, scratch, order);
        (Selection::Members, all_down, location)
    }

    /// A copy for explaining an answer (`GET /v1/explain`): the same members and
    /// policy, but its own counters and a detached round-robin rotation, so that
    /// explaining counts no answer and advances no rotation.
    pub fn detached(&self) -> Pool {
        Pool {
            def: self.def.clone(),
            name_text: self.name_text.clone(),
            policy: self.policy.detached().unwrap_or_else(|| self.policy.clone()),
            candidates: self.candidates.clone(),
            members: self.members.clone(),
            family: self.family.clone(),
            max_answers: self.max_answers,
            all_down: self.all_down,
            ttl: self.ttl,
            counters: Arc::default(),
        }
    }
}

/// A member as answers need it. Its A or AAAA record is written from the
/// address when answered ([`write_address`]): 100,000 pools of 4 members hold no
/// record buffer each.
#[derive(Debug, Clone)]
pub struct PoolMember {
    pub address: IpAddr,
    pub enabled: bool,
    pub healthy: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Family {
    /// Members of this family, in declared order.
    pub all: Box<[u16]>,
    /// Enabled and healthy.
    pub eligible: Box<[u16]>,
    /// Enabled (for `all_down = "serve-all"`).
    pub enabled: Box<[u16]>,
    /// The pool's fallback addresses of this family.
    pub fallback_addrs: Box<[IpAddr]>,
}

/// Health as the builder needs it: is this member up?
pub trait HealthView {
    fn is_up(&self, pool: &PoolDef, address: IpAddr) -> bool;
}

/// Every member is up (no probes): used by `check`, and for `check = "none"`.
pub struct AllUp;
impl HealthView for AllUp {
    fn is_up(&self, _: &PoolDef, _: IpAddr) -> bool {
        true
    }
}

/// Lower-cased wire form of a name.
pub fn wire(name: &Name) -> Box<[u8]> {
    let mut v = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        v.push(label.len() as u8);
        v.extend(label.iter().map(|b| b.to_ascii_lowercase()));
    }
    v.push(0);
    v.into_boxed_slice()
}

/// Encodes TYPE, CLASS IN, TTL, RDLENGTH and RDATA (names uncompressed, case kept).
/// The RDATA comes from [`crate::rdata::encode`], the check every record passed
/// when it was admitted, so this fails only on a bug.
pub fn encode_record(ttl: u32, rdata: &RData) -> Result<Vec<u8>, RecordError> {
    let rd = crate::rdata::encode(rdata)?;
    let mut out = Vec::with_capacity(10 + rd.len());
    out.extend_from_slice(&u16::from(rdata.record_type()).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
    out.extend_from_slice(&rd);
    Ok(out)
}

/// The length of an address record of family `f` (0 = IPv4, 1 = IPv6) from TYPE
/// to the end of RDATA: what [`write_address`] writes.
pub const fn address_record_len(f: usize) -> usize {
    if f == 0 { 14 } else { 26 }
}

/// Writes TYPE, CLASS IN, TTL, RDLENGTH and RDATA of `address`'s A or AAAA
/// record. On the query path: it only extends `out`, which has grown already.
#[inline]
pub fn write_address(out: &mut Vec<u8>, address: IpAddr, ttl: u32) {
    let ttl = ttl.to_be_bytes();
    match address {
        IpAddr::V4(a) => {
            out.extend_from_slice(&[0, 1, 0, 1, ttl[0], ttl[1], ttl[2], ttl[3], 0, 4]);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.extend_from_slice(&[0, 28, 0, 1, ttl[0], ttl[1], ttl[2], ttl[3], 0, 16]);
            out.extend_from_slice(&a.octets());
        }
    }
}

/// Builds a zone's query structure from its records. `pool_names` marks nodes that
/// are pools (index into the snapshot's pool vector).
pub fn build_zone(data: &ZoneData, serial_bump: u32, pool_index: &BTreeMap<Name, u32>) -> Result<Zone, Problem> {
    let origin = data.origin.to_lowercase();
    let origin_wire = wire(&origin);
    let mut nodes: FxHashMap<Box<[u8]>, Node> = FxHashMap::default();
    // Group records by (name, type), keeping file order.
    let mut sets: BTreeMap<(Box<[u8]>, u16), Vec<&ZoneRecord>> = BTreeMap::new();
    for r in &data.records {
        sets.entry((wire(&r.name), u16::from(r.rtype()))).or_default().push(r);
    }
    let mut apex_soa: Option<(SOA, u32)> = None;
    for ((key, rtype), records) in &sets {
        if *rtype == 6 {
            // Zone loading guarantees exactly one SOA, at the apex.
            if let (RData::SOA(soa), Some(r)) = (&records[0].rdata, records.first()) {
                apex_soa = Some((soa.clone(), r.ttl));
            }
            continue;
        }
        let mut buf = Vec::new();
        let mut lens = Vec::new();
        let mut targets = Vec::new();
        // RFC 2181 5.2: one TTL per RRset; use the lowest.
        let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
        for r in records {
            let rdata = r.rdata.clone();
            let enc = encode_record(ttl, &rdata).map_err(|e| Problem::new(&*r.file, r.line, e.to_string()))?;
            // Identical records in one RRset are one record (RFC 2181 5).
            if records.len() > 1 {
                let mut off = 0usize;
                let dup = lens.iter().any(|&l: &u16| {
                    let same = buf[off..off + l as usize] == enc[..];
                    off += l as usize;
                    same
                });
                if dup {
                    continue;
                }
            }
            lens.push(enc.len() as u16);
            buf.extend_from_slice(&enc);
            match &rdata {
                RData::CNAME(c) => targets.push(wire(&c.0)),
                RData::NS(n) => targets.push(wire(&n.0)),
                RData::MX(m) => targets.push(wire(&m.exchange)),
                RData::SRV(s) => targets.push(wire(&s.target)),
                _ => {}
            }
        }
        let node = nodes.entry(key.clone()).or_default();
        if *rtype == 2 && *key != origin_wire {
            node.delegation = true;
        }
        node.rrsets.push(RRset {
            rtype: *rtype,
            data: buf.into_boxed_slice(),
            lens: lens.into(),
            targets,
            ..RRset::default()
        });
    }
    // Pools are names too.
    for (name, &idx) in pool_index.range(origin.clone()..) {
        if !origin.zone_of(name) {
            continue;
        }
        nodes.entry(wire(name)).or_default().pool = Some(idx);
    }
    // Empty non-terminals: every ancestor of a name, up to the apex, exists.
    let names: Vec<Box<[u8]>> = nodes.keys().cloned().collect();
    for n in names {
        let mut pos = 0usize;
        while n.len() - pos > origin_wire.len() {
            pos += 1 + n[pos] as usize;
            nodes.entry(n[pos..].to_vec().into_boxed_slice()).or_default();
        }
    }
    nodes.entry(origin_wire.clone()).or_default().apex = true;
    attach_extras(&mut nodes, &origin_wire);
    let Some((mut soa, soa_ttl)) = apex_soa else {
        return Err(Problem::new(&data.file, 0, format!("zone {origin} has no SOA record at its apex")));
    };
    // RFC 1982 serial arithmetic: wrapping addition.
    soa.serial = soa.serial.wrapping_add(serial_bump);
    let (soa_rrset, negative_soa) =
        encode_soa(&soa, soa_ttl).map_err(|e| Problem::new(&data.file, 0, e.to_string()))?;
    Ok(Zone {
        labels: origin.num_labels() as usize,
        origin,
        origin_wire,
        nodes: Arc::new(nodes),
        soa: soa_rrset,
        negative_soa,
        serial: soa.serial,
        soa_rdata: soa,
        soa_ttl,
    })
}

/// Where the target name starts in the RDATA of an NS, MX or SRV record.
fn target_offset(rtype: u16) -> Option<u16> {
    match rtype {
        2 => Some(0),
        15 => Some(2),
        33 => Some(6),
        _ => None,
    }
}

/// Whether wire name `name` is `ancestor` or below it (both lower-cased).
fn is_at_or_below(name: &[u8], ancestor: &[u8]) -> bool {
    let mut pos = 0usize;
    while pos < name.len() {
        if name[pos..] == *ancestor {
            return true;
        }
        pos += 1 + name[pos] as usize;
    }
    false
}

/// Gives every NS, MX and SRV RRset the in-zone A and AAAA RRsets of its targets.
/// Pools are left out: their answer depends on the client and on health, which
/// change without the zone being rebuilt, and resolvers ask for them anyway.
fn attach_extras(nodes: &mut FxHashMap<Box<[u8]>, Node>, origin_wire: &[u8]) {
    /// (owner, index of the RRset in its node, its extras)
    type Found = (Box<[u8]>, usize, Box<[Extra]>);
    let mut found: Vec<Found> = Vec::new();
    for (owner, node) in nodes.iter() {
        for (i, rs) in node.rrsets.iter().enumerate() {
            let extras = extras_of(nodes, owner, rs, origin_wire);
            if !extras.is_empty() {
                found.push((owner.clone(), i, extras));
            }
        }
    }
    for (owner, i, extras) in found {
        if let Some(rs) = nodes.get_mut(&owner).and_then(|n| n.rrsets.get_mut(i)) {
            rs.extras = extras;
        }
    }
}

/// The additional data of `rs` at `owner`: each distinct in-zone target that has
/// addresses, in record order.
fn extras_of(nodes: &FxHashMap<Box<[u8]>, Node>, owner: &[u8], rs: &RRset, origin_wire: &[u8]) -> Box<[Extra]> {
    let Some(name_at) = target_offset(rs.rtype) else { return Box::default() };
    let mut extras: Vec<Extra> = Vec::new();
    for (j, target) in rs.targets.iter().enumerate() {
        if extras.iter().any(|e| e.target == *target) || !is_at_or_below(target, origin_wire) {
            continue;
        }
        let Some(n) = target_node(nodes, target, origin_wire).filter(|n| n.pool.is_none()) else { continue };
        let rrsets: Box<[RRset]> = [1u16, 28].iter().filter_map(|&t| n.rrset(t)).cloned().collect();
        if !rrsets.is_empty() {
            let in_domain = is_at_or_below(target, owner);
            extras.push(Extra { record: j as u16, name_at, target: target.clone(), in_domain, rrsets });
        }
    }
    extras.into()
}

/// The node that answers for `target`: its own, or the wildcard at its closest
/// encloser (RFC 4592) when the name does not exist.
fn target_node<'n>(nodes: &'n FxHashMap<Box<[u8]>, Node>, target: &[u8], origin_wire: &[u8]) -> Option<&'n Node> {
    if let Some(n) = nodes.get(target) {
        return Some(n);
    }
    let mut pos = 0usize;
    while target.len() - pos > origin_wire.len() {
        pos += 1 + target[pos] as usize;
        if nodes.contains_key(&target[pos..]) {
            let mut wc = vec![1u8, b'*'];
            wc.extend_from_slice(&target[pos..]);
            return nodes.get(&wc[..]);
        }
    }
    None
}

/// Builds the query-path form of a pool.
pub fn build_pool(def: Arc<PoolDef>, health: &dyn HealthView, previous: Option<&Pool>, regions: &Regions) -> Pool {
    // Keep the policy object (its round-robin cursor) when the policy is unchanged;
    // `geo` depends on the members' regions, so it is built anew.
    let policy: Arc<dyn Policy> = match (previous, policy::build(def.policy)) {
        (Some(p), Some(_)) if p.def.policy == def.policy => p.policy.clone(),
        (_, Some(built)) => Arc::from(built),
        (_, None) => {
            let member_regions: Vec<Option<&str>> = def.members.iter().map(|m| m.region.as_deref()).collect();
            Arc::new(policy::Geo::new(regions, &member_regions))
        }
    };
    let mut family: [Family; 2] = Default::default();
    let mut lists: [(Vec<u16>, Vec<u16>, Vec<u16>); 2] = Default::default();
    let mut members = Vec::with_capacity(def.members.len());
    let mut candidates = Vec::with_capacity(def.members.len());
    for (i, m) in def.members.iter().enumerate() {
        let f = usize::from(m.address.is_ipv6());
        let healthy = health.is_up(&def, m.address);
        lists[f].0.push(i as u16);
        if m.enabled {
            lists[f].2.push(i as u16);
            if healthy {
                lists[f].1.push(i as u16);
            }
        }
        members.push(PoolMember { address: m.address, enabled: m.enabled, healthy });
        candidates.push(Candidate { weight: m.weight.max(1), seed: crate::net::addr_seed(m.address) });
    }
    for (f, (all, eligible, enabled)) in lists.into_iter().enumerate() {
        family[f].all = all.into();
        family[f].eligible = eligible.into();
        family[f].enabled = enabled.into();
    }
    for (f, fam) in family.iter_mut().enumerate() {
        fam.fallback_addrs = def.fallback.iter().filter(|a| usize::from(a.is_ipv6()) == f).copied().collect();
    }
    let counters = previous.map(|p| p.counters.clone()).unwrap_or_default();
    Pool {
        name_text: def.name.to_ascii(),
        counters,
        policy,
        candidates: candidates.into(),
        members: members.into(),
        family,
        max_answers: def.max_answers,
        all_down: def.all_down,
        ttl: def.ttl,
        def,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn empty_non_terminals_exist() {
        let origin = Name::from_ascii("example.test.").unwrap();
        let z = crate::zone::parse_str(
            &origin,
            Path::new("/z"),
            "$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\na.b.c A 192.0.2.2\n",
        )
        .unwrap();
        let zone = build_zone(&z, 0, &BTreeMap::new()).unwrap();
        assert!(zone.nodes.contains_key(&wire(&Name::from_ascii("b.c.example.test.").unwrap())));
        assert!(zone.nodes.contains_key(&wire(&Name::from_ascii("c.example.test.").unwrap())));
        assert!(!zone.nodes.contains_key(&wire(&Name::from_ascii("x.example.test.").unwrap())));
        // Negative TTL is min(SOA TTL, MINIMUM).
        let neg = &zone.negative_soa;
        assert_eq!(u32::from_be_bytes([neg[4], neg[5], neg[6], neg[7]]), 30);
        assert_eq!(zone.serial, 1);
    }

    /// The address records a pool answer writes are byte for byte what the
    /// record encoder makes of the same A and AAAA data.
    #[test]
    fn address_records_are_written_as_the_encoder_makes_them() {
        use hickory_proto::rr::rdata::{A, AAAA};
        let v4: std::net::Ipv4Addr = "192.0.2.7".parse().unwrap();
        let v6: std::net::Ipv6Addr = "2001:db8::7".parse().unwrap();
        for (f, address, rdata) in
            [(0, IpAddr::V4(v4), RData::A(A::from(v4))), (1, v6.into(), RData::AAAA(AAAA::from(v6)))]
        {
            let mut out = vec![0xc0, 0x0c];
            write_address(&mut out, address, 86_401);
            assert_eq!(out[2..], encode_record(86_401, &rdata).unwrap()[..], "{address}");
            assert_eq!(out.len() - 2, address_record_len(f));
        }
    }

    /// NS, MX and SRV RRsets carry their in-zone targets' addresses: once per
    /// target, a wildcard's for a name it covers, none for a pool or out of zone.
    #[test]
    fn extras_of_targets() {
        let origin = Name::from_ascii("e.test.").unwrap();
        let z = crate::zone::parse_str(
            &origin,
            Path::new("/z"),
            "$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\nns AAAA 2001:db8::1\n\
             @ MX 1 ns\n@ MX 2 ns\n@ MX 3 x.wild\n@ MX 4 pool\n@ MX 5 mx.other.test.\n*.wild A 192.0.2.9\n\
             sub NS ns.sub\nsub NS ns\nns.sub A 192.0.2.2\n_s._tcp SRV 0 0 1 ns\n",
        )
        .unwrap();
        let pools = BTreeMap::from([(Name::from_ascii("pool.e.test.").unwrap(), 0u32)]);
        let zone = build_zone(&z, 0, &pools).unwrap();
        let node = |n: &str| &zone.nodes[&wire(&Name::from_ascii(n).unwrap())];
        let targets = |rs: &RRset| -> Vec<(u16, u16, bool, usize)> {
            rs.extras.iter().map(|e| (e.record, e.name_at, e.in_domain, e.rrsets.len())).collect()
        };
        let mx = targets(node("e.test.").rrset(15).unwrap());
        assert_eq!(mx.len(), 2, "{mx:?}");
        assert_eq!((mx[0].0, mx[0].1, mx[0].3), (0, 2, 2), "ns: A and AAAA, once");
        assert_eq!((mx[1].0, mx[1].3), (2, 1), "x.wild: the wildcard's A");
        let ns = targets(node("sub.e.test.").rrset(2).unwrap());
        assert_eq!(ns, [(0, 0, true, 1), (1, 0, false, 2)], "in-domain glue, then the apex server");
        let srv = targets(node("_s._tcp.e.test.").rrset(33).unwrap());
        assert_eq!((srv.len(), srv[0].1), (1, 6));
    }
}
