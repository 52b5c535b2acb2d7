//! What a zone transfer (AXFR, IXFR) sends for a zone of a snapshot, and who may
//! ask for one. Static RRsets go out exactly as they are held; a pool goes out
//! as an ordinary A/AAAA RRset with the pool's TTL: its enabled members that are
//! healthy (`transfer_pools = "healthy"`) or all of them (`"enabled"`), and when
//! none is, what its `all_down` policy answers (every enabled member, the
//! fallback addresses, or nothing: a secondary cannot serve SERVFAIL).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{NodeView, Pool, Snapshot, wire, write_address};
use crate::config::{AllDown, TransferPools, TransferSettings, ZoneSpec};

/// The transfer settings of every zone that is transferred or notified, by
/// lower-cased wire origin.
pub type TransferTable = FxHashMap<Box<[u8]>, Arc<TransferSettings>>;

/// The table of the zones in `zones` that have transfer settings.
pub fn table(zones: &[ZoneSpec]) -> TransferTable {
    zones.iter().filter(|z| z.transfer.active()).map(|z| (wire(&z.origin), Arc::new(z.transfer.clone()))).collect()
}

/// Appends the records a transfer sends at `node` to `out`, each from TYPE to
/// the end of RDATA (as held: names uncompressed), RRset after RRset.
pub fn node_records(snap: &Snapshot, node: NodeView<'_>, mode: TransferPools, out: &mut Vec<u8>) {
    let pool = node.pool().and_then(|i| snap.pools.get(i as usize));
    for rs in node.rrsets() {
        // A pool's addresses are its members, never records held at its name.
        if pool.is_some() && (rs.rtype == 1 || rs.rtype == 28) {
            continue;
        }
        out.extend_from_slice(rs.bytes());
    }
    if let Some(p) = pool {
        pool_records(p, mode, out);
    }
}

/// Appends a pool's transferred A and AAAA records (see the module docs).
pub fn pool_records(pool: &Pool, mode: TransferPools, out: &mut Vec<u8>) {
    for fam in &pool.family {
        if fam.all.is_empty() {
            continue;
        }
        let chosen = match mode {
            TransferPools::Healthy => &fam.eligible,
            TransferPools::Enabled => &fam.enabled,
        };
        let members = |list: &[u16], out: &mut Vec<u8>| {
            for m in list.iter().filter_map(|&i| pool.members.get(i as usize)) {
                write_address(out, m.address, pool.ttl);
            }
        };
        if !chosen.is_empty() {
            members(chosen, out);
            continue;
        }
        match pool.all_down {
            AllDown::ServeAll => members(&fam.enabled, out),
            AllDown::Fallback => fam.fallback_addrs.iter().for_each(|&a| write_address(out, a, pool.ttl)),
            AllDown::Empty | AllDown::Servfail => {}
        }
    }
}
