//! The immutable [`Snapshot`] that every query reads, and how it is built.
//!
//! Names are keyed by their lower-cased wire form, and records are pre-encoded
//! (type, class, TTL, RDLENGTH, RDATA with uncompressed names) and held once, in a
//! zone's contiguous buffers ([`Base`]), so that answering is hash lookups and byte
//! copies. Pools are held apart in [`Pools`], which zone nodes index into: a health
//! change replaces its pools and the chunks holding them, and shares every other
//! pool and every zone unchanged.

mod build;
mod pools;
mod read;
pub mod transfer;
mod zone;

pub use build::{Settings, build, build_zones, pool_index, rebuild_pools};
pub use pools::Pools;
pub use read::{RRsetTexts, decode_rrset, node_name, rrset_texts};
pub use zone::{Base, BaseBuilder, EncodedRRset, Layer, LayerNode, NodeView, RRsetView, RRsets, Records, TooLarge};

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData};
use rustc_hash::FxHashMap;

use crate::config::{AllDown, MemberConfig, PolicyName, PoolDef};
use crate::counters::PoolCounters;
use crate::geoip::GeoDb;
use crate::policy::{self, Candidate, Policy};
use crate::rdata::RecordError;

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
    /// Zone transfer settings of the zones that have any, by lower-cased wire origin.
    pub transfer: Arc<transfer::TransferTable>,
    /// The signed zones' keys and the signature cache.
    pub dnssec: Arc<crate::dnssec::Signing>,
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
            transfer: Arc::default(),
            dnssec: Arc::default(),
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
            transfer: self.transfer.clone(),
            dnssec: self.dnssec.clone(),
        }
    }
}

/// `[regions]`: location key -> region names, most preferred first.
pub type Regions = BTreeMap<String, Vec<String>>;

/// A zone: its records held once ([`Base`]), and its SOA apart.
#[derive(Debug)]
pub struct Zone {
    pub origin: Name,
    pub origin_wire: Box<[u8]>,
    pub labels: usize,
    /// Every name and record as built from the zone data; shared by the zones
    /// made from this one by API changes and serial bumps.
    pub base: Arc<Base>,
    /// The nodes API RRset changes touched since the base was built (with the
    /// ancestors whose existence followed), over the base.
    pub layer: Layer,
    /// The part of `layer` that is the zone file's: what a reload of the
    /// changed file laid over the base it shares with the zone before.
    file_layer: Layer,
    /// The apex SOA record (kept out of the apex node, so that a serial bump
    /// re-encodes one record and shares every node).
    soa: Box<[u8]>,
    /// The apex SOA encoded for negative answers: TTL = min(SOA TTL, MINIMUM).
    pub negative_soa: Box<[u8]>,
    pub serial: u32,
    soa_rdata: SOA,
    soa_ttl: u32,
    /// The SOA serial of the zone file (before the API's changes advanced it).
    file_serial: u32,
}

impl Zone {
    /// This zone with its SOA serial advanced by `bump` from the zone file's.
    pub fn with_serial_bump(&self, base_serial: u32, bump: u32) -> Result<Zone, RecordError> {
        let mut soa = self.soa_rdata.clone();
        soa.serial = base_serial.wrapping_add(bump);
        let (record, negative) = encode_soa(&soa, self.soa_ttl)?;
        Ok(Zone {
            origin: self.origin.clone(),
            origin_wire: self.origin_wire.clone(),
            labels: self.labels,
            base: self.base.clone(),
            layer: self.layer.clone(),
            file_layer: self.file_layer.clone(),
            soa: record,
            negative_soa: negative,
            serial: soa.serial,
            soa_rdata: soa,
            soa_ttl: self.soa_ttl,
            file_serial: self.file_serial,
        })
    }

    /// This zone with its SOA serial advanced by `bump` from the zone file's
    /// (itself, shared, when that is its serial already).
    pub fn with_bump(self: &Arc<Zone>, bump: u32) -> Result<Arc<Zone>, RecordError> {
        let serial = self.file_serial.wrapping_add(bump);
        if serial == self.serial {
            return Ok(self.clone());
        }
        self.with_serial_bump(self.file_serial, bump).map(Arc::new)
    }

    /// The apex SOA RRset.
    pub fn soa(&self) -> RRsetView<'_> {
        RRsetView::new(6, 1, &self.soa)
    }

    /// The node at `name` (lower-cased wire), if the name exists.
    pub fn node(&self, name: &[u8]) -> Option<NodeView<'_>> {
        self.base.node_in(&self.layer, name)
    }

    /// This zone with the RRset `rtype` at `name` (lower-cased wire, in this zone)
    /// replaced by `set`, or removed: the base is shared, the layer gets the node
    /// (and the ancestors whose existence changes with it). The serial is not
    /// advanced here ([`Zone::with_serial_bump`]).
    pub fn with_rrset(&self, name: &[u8], rtype: u16, set: Option<EncodedRRset>) -> Zone {
        self.with_layer(zone::with_rrset(&self.base, &self.layer, &self.origin_wire, name, rtype, set))
    }

    /// This zone (its base and layer) as a zone file's whose apex SOA is now
    /// `soa` with TTL `soa_ttl`, no serial advanced: the zone a reload of a
    /// changed file starts from before it lays the changed RRsets.
    pub fn with_file_soa(&self, soa: SOA, soa_ttl: u32) -> Result<Zone, RecordError> {
        let mut zone = file_zone(&self.origin, self.base.clone(), soa, soa_ttl)?;
        zone.layer = self.layer.clone();
        zone.file_layer = self.layer.clone();
        Ok(zone)
    }

    /// This zone with all of its layer taken as the zone file's (a reload laid
    /// the file's changes over the base).
    pub fn as_file(&self) -> Zone {
        let mut zone = self.with_layer(self.layer.clone());
        zone.file_layer = self.layer.clone();
        zone
    }

    /// This zone with `layer` over its base.
    fn with_layer(&self, layer: Layer) -> Zone {
        Zone {
            origin: self.origin.clone(),
            origin_wire: self.origin_wire.clone(),
            labels: self.labels,
            base: self.base.clone(),
            layer,
            file_layer: self.file_layer.clone(),
            soa: self.soa.clone(),
            negative_soa: self.negative_soa.clone(),
            serial: self.serial,
            soa_rdata: self.soa_rdata.clone(),
            soa_ttl: self.soa_ttl,
            file_serial: self.file_serial,
        }
    }

    /// The node that answers for `target` (lower-cased wire, in this zone): its
    /// own, or the wildcard at its closest encloser (RFC 4592) when the name does
    /// not exist.
    pub fn target_node(&self, target: &[u8]) -> Option<NodeView<'_>> {
        if let Some(n) = self.node(target) {
            return Some(n);
        }
        let mut pos = 0usize;
        while target.len() - pos > self.origin_wire.len() {
            pos += 1 + target[pos] as usize;
            let ce = target.get(pos..)?;
            if self.node(ce).is_some() {
                let mut wc = [0u8; 257];
                wc[..2].copy_from_slice(&[1, b'*']);
                wc[2..2 + ce.len()].copy_from_slice(ce);
                return self.node(&wc[..2 + ce.len()]);
            }
        }
        None
    }
}

/// The SOA record as answered, and as sent in negative answers.
type EncodedSoa = (Box<[u8]>, Box<[u8]>);

fn encode_soa(soa: &SOA, ttl: u32) -> Result<EncodedSoa, RecordError> {
    let rdata = RData::SOA(soa.clone());
    let rec = encode_record(ttl, &rdata)?.into_boxed_slice();
    let negative = encode_record(ttl.min(soa.minimum), &rdata)?.into_boxed_slice();
    Ok((rec, negative))
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
    /// The effective weight the policies use (see [`HealthView::weight`]).
    pub weight: f64,
}

/// One family's members by index. The lists are shared (`Arc`): in most pools
/// each is every member in order (`0..n`), and all such pools hold one copy of
/// it (see [`ids`]).
#[derive(Debug, Default, Clone)]
pub struct Family {
    /// Members of this family, in declared order.
    pub all: Arc<[u16]>,
    /// Enabled and healthy.
    pub eligible: Arc<[u16]>,
    /// Enabled (for `all_down = "serve-all"`).
    pub enabled: Arc<[u16]>,
    /// The pool's fallback addresses of this family.
    pub fallback_addrs: Box<[IpAddr]>,
}

/// Health as the builder needs it: is this member up?
pub trait HealthView {
    fn is_up(&self, pool: &PoolDef, member: &MemberConfig) -> bool;

    /// The member's effective weight (load feedback, slow start); by default
    /// the configured one.
    fn weight(&self, _pool: &PoolDef, member: &MemberConfig) -> f64 {
        f64::from(member.weight)
    }
}

/// Every member is up (no probes): used by `check`, and for `check = "none"`.
pub struct AllUp;
impl HealthView for AllUp {
    fn is_up(&self, _: &PoolDef, _: &MemberConfig) -> bool {
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

/// The zone of a zone file: `base` (its records, with the pools known when it
/// was loaded marked) and its apex SOA, no serial advanced and no layer.
pub fn file_zone(origin: &Name, base: Arc<Base>, soa: SOA, soa_ttl: u32) -> Result<Zone, RecordError> {
    let origin = origin.to_lowercase();
    let (soa_record, negative_soa) = encode_soa(&soa, soa_ttl)?;
    Ok(Zone {
        labels: origin.num_labels() as usize,
        origin_wire: wire(&origin),
        origin,
        base,
        layer: Layer::default(),
        file_layer: Layer::default(),
        soa: soa_record,
        negative_soa,
        serial: soa.serial,
        file_serial: soa.serial,
        soa_rdata: soa,
        soa_ttl,
    })
}

/// The zone of the zone file `file` with its pool nodes marked for `pool_index`
/// and its serial advanced by `serial_bump`.
pub fn build_zone(file: &Arc<Zone>, serial_bump: u32, pool_index: &BTreeMap<Name, u32>) -> Result<Zone, RecordError> {
    file.with_pools(pool_index).with_serial_bump(file.file_serial, serial_bump)
}

impl Zone {
    /// This zone with its pool nodes marked for `pool_index` (pool name ->
    /// position in the snapshot's pools): itself, shared, when its base has them
    /// marked so already; otherwise the marks that differ are laid over the base
    /// (O(pools in the zone), the base is never copied).
    pub fn with_pools(self: &Arc<Zone>, pool_index: &BTreeMap<Name, u32>) -> Arc<Zone> {
        let wanted: FxHashMap<Box<[u8]>, u32> = pool_index
            .range(self.origin.clone()..)
            .filter(|(name, _)| self.origin.zone_of(name))
            .map(|(name, &i)| (wire(name), i))
            .collect();
        let mut marks: Vec<(&[u8], Option<u32>)> = wanted
            .iter()
            .filter(|(name, i)| self.base.node(name).and_then(|n| n.pool()) != Some(**i))
            .map(|(name, &i)| (&**name, Some(i)))
            .collect();
        marks.extend(self.base.pools().filter(|(name, _)| !wanted.contains_key(*name)).map(|(name, _)| (name, None)));
        if marks.is_empty() {
            return self.clone();
        }
        let mut layer = self.layer.clone();
        for (name, pool) in marks {
            layer = zone::with_pool(&self.base, &layer, &self.origin_wire, name, pool);
        }
        Arc::new(self.with_layer(layer))
    }

    /// This zone with the nodes of `pools` (name, position) in it marked as
    /// theirs, every other mark kept: a zone marked for the config's pools
    /// given the API's, which follow them in the list. The cost is that of the
    /// pools given, not of those the zone has.
    pub fn with_pools_added<'p>(self: &Arc<Zone>, pools: impl IntoIterator<Item = (&'p Name, u32)>) -> Arc<Zone> {
        let mut layer: Option<Layer> = None;
        for (name, i) in pools.into_iter().filter(|(name, _)| self.origin.zone_of(name)) {
            let over = layer.get_or_insert_with(|| self.layer.clone());
            *over = zone::with_pool(&self.base, over, &self.origin_wire, &wire(name), Some(i));
        }
        match layer {
            Some(layer) => Arc::new(self.with_layer(layer)),
            None => self.clone(),
        }
    }
}

/// Where the target name starts in the RDATA of an NS, MX or SRV record: these
/// RRsets' targets' addresses go in the additional section.
pub fn target_offset(rtype: u16) -> Option<usize> {
    match rtype {
        2 => Some(0),
        15 => Some(2),
        33 => Some(6),
        _ => None,
    }
}

/// Whether wire name `name` is `ancestor` or below it (both lower-cased).
pub fn is_at_or_below(name: &[u8], ancestor: &[u8]) -> bool {
    let mut pos = 0usize;
    while pos < name.len() {
        if name[pos..] == *ancestor {
            return true;
        }
        pos += 1 + name[pos] as usize;
    }
    false
}

/// Copies the uncompressed wire name at the start of `src` into `dst`,
/// lower-cased; returns its length (`None` if it is not a well-formed name).
pub fn lower_name(src: &[u8], dst: &mut [u8; 256]) -> Option<usize> {
    let mut pos = 0usize;
    loop {
        let len = *src.get(pos)? as usize;
        if len > 63 || pos + 1 + len > 255 {
            return None;
        }
        let label = src.get(pos..pos + 1 + len)?;
        for (d, s) in dst[pos..pos + 1 + len].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        pos += 1 + len;
        if len == 0 {
            return Some(pos);
        }
    }
}

/// Candidate weights are effective weights in hundredths, at least 1: so that
/// a member of weight 1 can still ramp up (slow start) and a reported weight of
/// 2.5 is not rounded. The policies only compare weights, so the scale is free.
pub fn candidate_weight(weight: f64) -> u32 {
    ((weight * 100.0).round() as u32).max(1)
}

/// Builds the query-path form of a pool.
pub fn build_pool(def: Arc<PoolDef>, health: &dyn HealthView, previous: Option<&Pool>, regions: &Regions) -> Pool {
    // Keep the policy object (its round-robin cursor) when the policy is unchanged;
    // `geo` depends on the members' regions, so it is built anew.
    let kept = previous.filter(|p| p.def.policy == def.policy && def.policy != PolicyName::Geo);
    let policy: Arc<dyn Policy> = match kept.map(|p| p.policy.clone()).or_else(|| policy::build(def.policy)) {
        Some(policy) => policy,
        None => {
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
        let healthy = health.is_up(&def, m);
        lists[f].0.push(i as u16);
        if m.enabled {
            lists[f].2.push(i as u16);
            if healthy {
                lists[f].1.push(i as u16);
            }
        }
        let weight = health.weight(&def, m);
        members.push(PoolMember { address: m.address, enabled: m.enabled, healthy, weight });
        candidates.push(Candidate { weight: candidate_weight(weight), seed: crate::net::addr_seed(m.address) });
    }
    for (f, (all, eligible, enabled)) in lists.into_iter().enumerate() {
        family[f].all = ids(all);
        family[f].eligible = ids(eligible);
        family[f].enabled = ids(enabled);
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

/// Lists `0..n` up to this long are shared by every pool that has one.
const SHARED_IDS: usize = 64;

/// `list` as held by a [`Family`]: `0..n` (every member of a one-family pool, all
/// enabled and up) is one shared copy for all pools, anything else its own.
fn ids(list: Vec<u16>) -> Arc<[u16]> {
    static RANGES: std::sync::LazyLock<Vec<Arc<[u16]>>> =
        std::sync::LazyLock::new(|| (0..=SHARED_IDS as u16).map(|n| (0..n).collect()).collect());
    let n = list.len();
    let in_order = list.iter().enumerate().all(|(i, &id)| usize::from(id) == i);
    match RANGES.get(n) {
        Some(shared) if in_order => shared.clone(),
        _ => list.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn zone(text: &str, pools: &BTreeMap<Name, u32>) -> Zone {
        let origin = Name::from_ascii("example.test.").unwrap();
        let z = crate::zone::parse_str_with(&origin, Path::new("/z"), text, pools).unwrap();
        build_zone(&z.zone, 0, pools).unwrap()
    }

    /// Pools other than those marked when the file was loaded (an API pool, a
    /// pool at another position, a pool gone) are laid over the base: the zone
    /// answers as one loaded with them marked, and its base is shared.
    #[test]
    fn pools_unlike_the_marks_are_laid_over_the_base() {
        let origin = Name::from_ascii("example.test.").unwrap();
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let text = "$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\nq TXT t\n";
        let loaded =
            BTreeMap::from([(n("p.a.example.test."), 0u32), (n("q.example.test."), 1), (n("r.example.test."), 2)]);
        let file = Arc::new(crate::zone::parse_str_with(&origin, Path::new("/z"), text, &loaded).unwrap().zone);
        assert!(Arc::ptr_eq(&file.with_pools(&loaded), &file), "the marks as loaded: the zone itself");
        let now =
            BTreeMap::from([(n("q.example.test."), 0u32), (n("r.example.test."), 2), (n("api.b.example.test."), 3)]);
        let laid = file.with_pools(&now);
        assert!(Arc::ptr_eq(&laid.base, &file.base));
        let rebuilt = zone(text, &now);
        for name in [
            "p.a.example.test.",
            "a.example.test.",
            "q.example.test.",
            "r.example.test.",
            "api.b.example.test.",
            "b.example.test.",
        ] {
            let pool = |z: &Zone| z.node(&w(name)).map(|v| (v.pool(), v.rrsets().count()));
            assert_eq!(pool(&laid), pool(&rebuilt), "{name}");
        }
        assert_eq!(laid.node(&w("q.example.test.")).and_then(|v| v.pool()), Some(0));
        assert!(laid.node(&w("a.example.test.")).is_none(), "p's empty non-terminal went with it");
    }

    /// A zone loaded marked for the config's pools, given the API's pools
    /// (which follow them in the list), is the zone `with_pools` makes of the
    /// whole list: the config's marks kept, each API pool's node marked (its
    /// empty non-terminal made), a pool of another zone left out.
    #[test]
    fn pools_added_keep_the_marks_as_loaded() {
        let origin = Name::from_ascii("example.test.").unwrap();
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let text = "$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\n";
        let config = BTreeMap::from([(n("p.a.example.test."), 0u32), (n("q.example.test."), 1)]);
        let file = Arc::new(crate::zone::parse_str_with(&origin, Path::new("/z"), text, &config).unwrap().zone);
        assert!(Arc::ptr_eq(&file.with_pools_added([]), &file), "nothing added: the zone itself");
        let (api, elsewhere) = (n("api.b.example.test."), n("api.other.test."));
        let added = file.with_pools_added([(&api, 2u32), (&elsewhere, 3)]);
        assert!(Arc::ptr_eq(&added.base, &file.base));
        let mut all = config.clone();
        all.extend([(api.clone(), 2), (elsewhere.clone(), 3)]);
        let whole = file.with_pools(&all);
        for name in
            ["p.a.example.test.", "a.example.test.", "q.example.test.", "api.b.example.test.", "b.example.test."]
        {
            let pool = |z: &Zone| z.node(&w(name)).map(|v| (v.pool(), v.rrsets().count()));
            assert_eq!(pool(&added), pool(&whole), "{name}");
        }
        assert_eq!(added.node(&w("api.b.example.test.")).and_then(|v| v.pool()), Some(2));
        assert_eq!(added.node(&w("q.example.test.")).and_then(|v| v.pool()), Some(1));
    }

    fn w(n: &str) -> Box<[u8]> {
        wire(&Name::from_ascii(n).unwrap())
    }

    /// Member lists in order (`0..n`) are one shared copy for every pool; any
    /// other list (a member down) is the pool's own, with the right members.
    #[test]
    fn in_order_member_lists_are_shared() {
        let text = "[[pool]]\nname = \"a.t.\"\n[[pool.member]]\naddress = \"192.0.2.1\"\n\
                    [[pool.member]]\naddress = \"192.0.2.2\"\n[[pool.member]]\naddress = \"2001:db8::1\"\n";
        let config = crate::config::parse(Path::new("/lbdns.toml"), text).unwrap();
        let def = Arc::new(config.pools[0].clone());
        struct Down;
        impl HealthView for Down {
            fn is_up(&self, _: &PoolDef, m: &MemberConfig) -> bool {
                m.address.to_string() != "192.0.2.1"
            }
        }
        let (a, b) = (
            build_pool(def.clone(), &AllUp, None, &Regions::new()),
            build_pool(def.clone(), &Down, None, &Regions::new()),
        );
        assert!(Arc::ptr_eq(&a.family[0].all, &b.family[0].all));
        assert!(Arc::ptr_eq(&a.family[0].eligible, &a.family[0].all));
        assert_eq!((&*b.family[0].eligible, &*b.family[0].enabled), (&[1u16][..], &[0u16, 1][..]));
        assert_eq!((&*a.family[1].all, &*a.family[1].eligible), (&[2u16][..], &[2u16][..]));
    }

    /// A rebuilt pool keeps its round-robin object (the rotation goes on); the
    /// policies without state are one object for every pool; a pool's own
    /// rotation is its own.
    #[test]
    fn policy_objects_are_kept_and_shared() {
        let def = |name: &str, policy: &str| {
            let text = format!(
                "[[pool]]\nname = \"{name}\"\npolicy = \"{policy}\"\n[[pool.member]]\naddress = \"192.0.2.1\"\n"
            );
            Arc::new(crate::config::parse(Path::new("/lbdns.toml"), &text).unwrap().pools[0].clone())
        };
        let build =
            |d: &Arc<PoolDef>, previous: Option<&Pool>| build_pool(d.clone(), &AllUp, previous, &Regions::new());
        let (w1, w2) = (build(&def("a.t.", "weighted"), None), build(&def("b.t.", "weighted"), None));
        assert!(Arc::ptr_eq(&w1.policy, &w2.policy), "one weighted object for every pool");
        let rr = def("c.t.", "round-robin");
        let (r1, r2) = (build(&rr, None), build(&def("d.t.", "round-robin"), None));
        assert!(!Arc::ptr_eq(&r1.policy, &r2.policy), "each pool rotates on its own");
        assert!(Arc::ptr_eq(&build(&rr, Some(&r1)).policy, &r1.policy), "a rebuild keeps the rotation");
        assert!(!Arc::ptr_eq(&build(&def("c.t.", "random"), Some(&r1)).policy, &r1.policy));
    }

    #[test]
    fn empty_non_terminals_exist() {
        let zone =
            zone("$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\na.b.c A 192.0.2.2\n", &BTreeMap::new());
        assert!(zone.node(&w("b.c.example.test.")).is_some_and(|n| n.first().is_none()));
        assert!(zone.node(&w("c.example.test.")).is_some());
        assert!(zone.node(&w("x.example.test.")).is_none());
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

    /// Records of one RRset are held together in file order, with the lowest TTL
    /// (RFC 2181 5.2) and without duplicates; a node's RRsets are ordered by type;
    /// the apex, cuts and pools are marked; names are found whatever their case.
    #[test]
    fn rrsets_grouped_and_flags_set() {
        let pools = BTreeMap::from([(Name::from_ascii("www.example.test.").unwrap(), 7u32)]);
        let zone = zone(
            "$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\nx TXT a\nx 30 A 192.0.2.9\n\
             X A 192.0.2.8\nx A 192.0.2.9\nsub NS ns.other.test.\n",
            &pools,
        );
        let x = zone.node(&w("x.example.test.")).unwrap();
        assert_eq!(x.rrsets().map(|r| r.rtype).collect::<Vec<_>>(), [1, 16]);
        let a = x.rrset(1).unwrap();
        assert_eq!(a.count(), 2);
        let recs: Vec<&[u8]> = a.records().collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(&recs[0][10..], &[192, 0, 2, 9]);
        assert_eq!(&recs[1][10..], &[192, 0, 2, 8]);
        assert!(recs.iter().all(|r| r[4..8] == 30u32.to_be_bytes()));
        assert!(zone.node(&w("example.test.")).is_some_and(|n| n.apex() && !n.delegation()));
        assert!(zone.node(&w("sub.example.test.")).is_some_and(|n| n.delegation()));
        assert_eq!(zone.node(&w("www.example.test.")).and_then(|n| n.pool()), Some(7));
        assert_eq!(zone.node(&w("ns.example.test.")).and_then(|n| n.pool()), None);
        // The SOA is held apart from the apex node.
        assert!(zone.node(&w("example.test.")).is_some_and(|n| n.rrset(6).is_none()));
        assert_eq!(zone.soa().records().count(), 1);
    }

    /// A target's node is its own, or the wildcard at its closest encloser.
    #[test]
    fn target_nodes_and_wildcards() {
        let zone = zone(
            "$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\n*.wild A 192.0.2.9\nb.wild A 192.0.2.3\n",
            &BTreeMap::new(),
        );
        let name = |n: &str| zone.target_node(&w(n)).map(|n| n.name().to_vec());
        assert_eq!(name("ns.example.test."), Some(w("ns.example.test.").to_vec()));
        assert_eq!(name("a.wild.example.test."), Some(w("*.wild.example.test.").to_vec()));
        assert_eq!(name("x.a.wild.example.test."), Some(w("*.wild.example.test.").to_vec()));
        assert_eq!(name("b.wild.example.test."), Some(w("b.wild.example.test.").to_vec()));
        assert_eq!(name("x.b.wild.example.test."), None, "b.wild is the closest encloser");
        assert_eq!(name("nope.example.test."), None);
    }

    #[test]
    fn lower_name_reads_uncompressed_names() {
        let mut buf = [0u8; 256];
        let src = [2, b'N', b's', 1, b'X', 0, 9, 9];
        assert_eq!(lower_name(&src, &mut buf), Some(6));
        assert_eq!(&buf[..6], &[2, b'n', b's', 1, b'x', 0]);
        assert_eq!(lower_name(&[3, b'a', b'b'], &mut buf), None, "cut short");
        assert_eq!(lower_name(&[0xc0, 12], &mut buf), None, "a pointer is not read");
        assert!(is_at_or_below(&w("a.b.example.test."), &w("example.test.")));
        assert!(!is_at_or_below(&w("example.test."), &w("a.example.test.")));
    }

    /// What a node holds, to compare zones: its flags, pool and RRsets.
    type Shape = (bool, bool, Option<u32>, Vec<(u16, Vec<u8>)>);

    fn shape(z: &Zone, n: &str) -> Option<Shape> {
        z.node(&w(n))
            .map(|v| (v.apex(), v.delegation(), v.pool(), v.rrsets().map(|r| (r.rtype, r.bytes().to_vec())).collect()))
    }

    fn rrset(text: &str) -> Option<EncodedRRset> {
        let z = zone(&format!("$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\n{text}\n"), &BTreeMap::new());
        let node = z.node(&w("x.example.test.")).or_else(|| z.node(&w("a.b.c.example.test.")))?;
        let rs = node.first()?;
        Some(EncodedRRset::new(rs.records()))
    }

    /// RRset changes laid over a base give the zone that building the changed
    /// zone data gives: RRsets replaced and removed, empty non-terminals made
    /// and gone with their last descendant, cuts following NS, pools kept.
    #[test]
    fn layer_over_base_matches_a_rebuild() {
        let pools = BTreeMap::from([(Name::from_ascii("p.example.test.").unwrap(), 3u32)]);
        let head = "$TTL 60\n@ SOA ns h 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\n";
        let base = zone(&format!("{head}d.e A 192.0.2.5\nkeep.e TXT k\np TXT t\n"), &pools);
        let z = base
            .with_rrset(&w("d.e.example.test."), 1, None)
            .with_rrset(&w("a.b.c.example.test."), 1, rrset("a.b.c A 192.0.2.7"))
            .with_rrset(&w("p.example.test."), 16, None)
            .with_rrset(&w("x.example.test."), 2, rrset("x NS ns.else.test."))
            .with_rrset(&w("x.example.test."), 1, rrset("x A 192.0.2.8\nx A 192.0.2.8"));
        let rebuilt =
            zone(&format!("{head}keep.e TXT k\na.b.c A 192.0.2.7\nx NS ns.else.test.\nx A 192.0.2.8\n"), &pools);
        for n in [
            "example.test.",
            "ns.example.test.",
            "d.e.example.test.",
            "e.example.test.",
            "keep.e.example.test.",
            "a.b.c.example.test.",
            "b.c.example.test.",
            "c.example.test.",
            "p.example.test.",
            "x.example.test.",
        ] {
            assert_eq!(shape(&z, n), shape(&rebuilt, n), "{n}");
        }
        assert_eq!(shape(&base, "b.c.example.test."), None);
        // The last descendant gone, its empty non-terminals go too.
        let gone = z.with_rrset(&w("a.b.c.example.test."), 1, None);
        assert_eq!(shape(&gone, "c.example.test."), None);
        assert_eq!(shape(&gone, "b.c.example.test."), None);
        // The base is shared, not copied.
        assert!(Arc::ptr_eq(&gone.base, &base.base));
        assert!(base.layer.is_empty());
    }
    /// Bytes per record of a held zone, all included (`ZoneData::heap_bytes`:
    /// the base and the line table, over the records loaded): `LBDNS_SCALE_ZONE=bench-dir/big.zone cargo test
    /// --release --lib held_zone_bytes -- --ignored --nocapture` on the zone
    /// `bench/scale.py` writes (origin big.test.).
    #[test]
    #[ignore]
    fn held_zone_bytes_per_record() {
        let Ok(path) = std::env::var("LBDNS_SCALE_ZONE") else { return };
        let origin = Name::from_ascii("big.test.").unwrap();
        let data = crate::zone::load(&origin, Path::new(&path)).unwrap();
        let zone = build_zone(&data.zone, 0, &BTreeMap::new()).unwrap();
        let records = data.records;
        let bytes = data.heap_bytes();
        println!(
            "{records} records, {} nodes: {bytes} bytes held, {} per record",
            zone.base.node_count(),
            bytes / records
        );
    }
}
