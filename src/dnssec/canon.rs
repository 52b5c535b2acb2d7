//! The canonical form of an RRset (RFC 4034 section 6): owner and the domain
//! names inside RDATA lower-cased (for the types section 6.2 lists, as RFC 6840
//! section 5.1 leaves them), records sorted by their RDATA as unsigned octet
//! strings. A pool's RRset is a set: whatever order the policy wrote its members
//! in, the canonical form, and so the signature and the cache key, is the same.
//! Everything goes into reused buffers: nothing is allocated once they have grown.

/// Where the domain names are in a type's RDATA: (offset of the first name, how
/// many names follow back to back); `None`: no name is lower-cased.
fn names_in(rtype: u16) -> Option<(usize, usize)> {
    match rtype {
        // NS, MD, MF, CNAME, MB, MG, MR, PTR, DNAME: the RDATA is one name.
        2..=5 | 7..=9 | 12 | 39 => Some((0, 1)),
        // SOA: MNAME RNAME; MINFO, RP: two names.
        6 | 14 | 17 => Some((0, 2)),
        // MX, AFSDB, RT, KX: preference then a name; PX: preference then two names.
        15 | 18 | 21 | 36 => Some((2, 1)),
        26 => Some((2, 2)),
        // SRV: priority, weight, port, target.
        33 => Some((6, 1)),
        _ => None,
    }
}

/// One RRset's records in canonical form, in reused buffers.
#[derive(Default)]
pub struct Canonical {
    /// Every record's canonical RDATA, back to back.
    rdata: Vec<u8>,
    /// (start, end) of each record's RDATA in `rdata`, sorted canonically.
    spans: Vec<(u32, u32)>,
    pub rtype: u16,
    /// The TTL the records carry (one per RRset).
    pub ttl: u32,
}

impl Canonical {
    /// Reads `records` (each TYPE, CLASS, TTL, RDLENGTH, RDATA) into canonical
    /// form; `false` if there is none or one is malformed.
    pub fn read<'r>(&mut self, records: impl Iterator<Item = &'r [u8]>) -> bool {
        self.rdata.clear();
        self.spans.clear();
        for rec in records {
            let (Some(head), Some(rd)) = (rec.get(..10), rec.get(10..)) else { return false };
            if self.spans.is_empty() {
                self.rtype = u16::from_be_bytes([head[0], head[1]]);
                self.ttl = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            }
            let start = self.rdata.len();
            self.rdata.extend_from_slice(rd);
            if let Some((at, n)) = names_in(self.rtype) {
                lower_names(&mut self.rdata[start..], at, n);
            }
            self.spans.push((start as u32, self.rdata.len() as u32));
        }
        let rdata = &self.rdata;
        self.spans.sort_unstable_by(|a, b| rdata[a.0 as usize..a.1 as usize].cmp(&rdata[b.0 as usize..b.1 as usize]));
        // Identical records count once (RFC 4034 section 6.3).
        self.spans.dedup_by(|a, b| rdata[a.0 as usize..a.1 as usize] == rdata[b.0 as usize..b.1 as usize]);
        !self.spans.is_empty()
    }

    /// Each record's canonical RDATA, in canonical order.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(|&(s, e)| &self.rdata[s as usize..e as usize])
    }

    /// The RRs as signed (RFC 4034 section 3.1.8.1): owner | type | class |
    /// original TTL | RDLENGTH | RDATA for each record, appended to `out`.
    pub fn write_signed(&self, owner: &[u8], out: &mut Vec<u8>) {
        for rd in self.records() {
            out.extend_from_slice(owner);
            out.extend_from_slice(&self.rtype.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&self.ttl.to_be_bytes());
            out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            out.extend_from_slice(rd);
        }
    }
}

/// Lower-cases `n` uncompressed names that start at `at` in `rdata`.
fn lower_names(rdata: &mut [u8], mut at: usize, n: usize) {
    for _ in 0..n {
        loop {
            let Some(&len) = rdata.get(at) else { return };
            if len == 0 || len > 63 {
                at += 1;
                break;
            }
            let end = (at + 1 + len as usize).min(rdata.len());
            rdata[at + 1..end].make_ascii_lowercase();
            at = end;
        }
    }
}

/// The RRSIG labels field of `owner` (lower-cased wire): its labels, the root
/// and a leading `*` not counted (RFC 4034 section 3.1.3).
pub fn labels(owner: &[u8]) -> u8 {
    let mut n = 0u8;
    let mut pos = 0usize;
    while let Some(&len) = owner.get(pos) {
        if len == 0 {
            break;
        }
        n += 1;
        pos += 1 + len as usize;
    }
    if owner.starts_with(b"\x01*") { n.saturating_sub(1) } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut r = rtype.to_be_bytes().to_vec();
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    /// The order records come in does not change the canonical form; names in
    /// RDATA are lower-cased for MX, not for TXT.
    #[test]
    fn order_and_case_do_not_count() {
        let a = rec(1, 60, &[192, 0, 2, 9]);
        let b = rec(1, 60, &[192, 0, 2, 1]);
        let (mut x, mut y) = (Canonical::default(), Canonical::default());
        assert!(x.read([&a[..], &b[..]].into_iter()));
        assert!(y.read([&b[..], &a[..], &b[..]].into_iter()));
        assert_eq!(x.records().collect::<Vec<_>>(), y.records().collect::<Vec<_>>());
        assert_eq!(x.records().next(), Some(&[192, 0, 2, 1][..]));
        let mx = rec(15, 60, b"\x00\x0a\x02MX\x01E\x00");
        assert!(x.read([&mx[..]].into_iter()));
        assert_eq!(x.records().next(), Some(&b"\x00\x0a\x02mx\x01e\x00"[..]));
        let txt = rec(16, 60, b"\x02AB");
        assert!(x.read([&txt[..]].into_iter()));
        assert_eq!(x.records().next(), Some(&b"\x02AB"[..]));
    }

    #[test]
    fn labels_leave_out_root_and_wildcard() {
        assert_eq!(labels(b"\x03www\x07example\x03net\x00"), 3);
        assert_eq!(labels(b"\x01*\x07example\x03net\x00"), 2);
        assert_eq!(labels(b"\x00"), 0);
    }
}
