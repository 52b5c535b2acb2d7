//! Where a zone file's records go as they are read: encoded at once into the
//! zone's compact form ([`BaseBuilder`]), with a small fact per record (node, type,
//! line: 12 bytes) that the whole-zone checks read and that is dropped after
//! them. What stays per RRset is the position of its first record, from which its
//! file and line are found for messages.

use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, RecordType};

use super::diff::Diff;
use crate::rdata::RecordError;
use crate::snapshot::{BaseBuilder, TooLarge, encode_record, wire};

/// One record as the checks need it: its node in the builder, type and line
/// (its file is found from its position, [`Sink::runs`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Fact {
    pub node: u32,
    pub rtype: u16,
    pub line: u32,
}

/// Why a record could not be taken.
#[derive(Debug, thiserror::Error)]
pub(super) enum Pushed {
    #[error("{0}")]
    Encode(RecordError),
    #[error("{0}")]
    TooLarge(TooLarge),
}

/// The records of one zone, as they are read.
pub(super) struct Sink {
    pub builder: BaseBuilder,
    /// One per record, in the order read (a record's position is its index).
    pub facts: Vec<Fact>,
    /// (first position, file index): the positions from there on came from that
    /// file, up to the next run. Files interleave only through `$INCLUDE`.
    pub runs: Vec<(u32, u32)>,
    /// Every file read, in the order opened.
    pub files: Vec<Arc<Path>>,
    /// The apex (lower-cased wire).
    pub apex: Box<[u8]>,
    /// The first SOA at the apex, its TTL and tag (position and line).
    pub soa: Option<(SOA, u32, u64)>,
    /// The owner of the record being taken, lower-cased wire (reused).
    owner: Vec<u8>,
    /// On a reload of a file whose zone is held: the records go to the
    /// comparison with it, not to `builder` (which then names only the nodes the
    /// held zone does not have, their ids after the held base's).
    pub diff: Option<Diff>,
}

impl Sink {
    pub fn new(origin: &Name) -> Sink {
        Sink {
            builder: BaseBuilder::default(),
            facts: Vec::new(),
            runs: Vec::new(),
            files: Vec::new(),
            apex: wire(origin),
            soa: None,
            owner: Vec::with_capacity(256),
            diff: None,
        }
    }

    /// Notes that `file` is read from now on; returns its index.
    pub fn open(&mut self, file: Arc<Path>) -> u32 {
        self.files.push(file);
        (self.files.len() - 1) as u32
    }

    /// Makes room for `more` records like those taken so far.
    pub fn reserve(&mut self, more: usize) {
        self.facts.reserve(more);
        // Compared with a held zone, the builder takes only the new nodes.
        if self.diff.is_none() {
            self.builder.reserve(more);
        }
    }

    /// Takes one record read at `line` of file `file`.
    pub fn push(&mut self, name: &[u8], ttl: u32, rdata: RData, file: u32, line: usize) -> Result<(), Pushed> {
        let rtype = u16::from(rdata.record_type());
        // The SOA is kept out of the base (a serial change re-encodes it alone).
        if let RData::SOA(soa) = rdata {
            let tag = self.start(name, file, line);
            let node = node_id(&self.diff, &mut self.builder, &self.owner).map_err(Pushed::TooLarge)?;
            if self.soa.is_none() && *self.owner == *self.apex {
                self.soa = Some((soa, ttl, tag));
            }
            self.facts.push(Fact { node, rtype, line: line as u32 });
            return Ok(());
        }
        let record = encode_record(ttl, &rdata).map_err(Pushed::Encode)?;
        self.push_encoded(name, &record, file, line)
    }

    /// Takes one record already encoded (TYPE to the end of RDATA, not an SOA)
    /// read at `line` of file `file`.
    pub fn push_encoded(&mut self, name: &[u8], record: &[u8], file: u32, line: usize) -> Result<(), Pushed> {
        let tag = self.start(name, file, line);
        let rtype = u16::from_be_bytes([record[0], record[1]]);
        let node = match &mut self.diff {
            Some(diff) => match diff.push(&self.owner, rtype, record, tag) {
                Some(held) => held,
                None => node_id(&self.diff, &mut self.builder, &self.owner).map_err(Pushed::TooLarge)?,
            },
            None => self.builder.add_tagged(&self.owner, record, tag).map_err(Pushed::TooLarge)?,
        };
        self.facts.push(Fact { node, rtype, line: line as u32 });
        Ok(())
    }

    /// Notes the file of the next record, writes its owner into `self.owner`;
    /// returns its tag.
    fn start(&mut self, name: &[u8], file: u32, line: usize) -> u64 {
        let position = self.facts.len() as u32;
        if self.runs.last().is_none_or(|&(_, f)| f != file) {
            self.runs.push((position, file));
        }
        // Lower-casing the whole wire name leaves its length octets (at most
        // 63, below b'A') as they are.
        self.owner.clear();
        self.owner.extend(name.iter().map(u8::to_ascii_lowercase));
        u64::from(position) << 32 | u64::from(line as u32)
    }

    /// The file the record at `position` came from.
    pub fn file_at(&self, position: u32) -> &Arc<Path> {
        file_at(&self.runs, &self.files, position)
    }

    /// The id of the node `owner` (lower-cased wire) in the checks' facts.
    pub fn node_id(&mut self, owner: &[u8]) -> Result<u32, TooLarge> {
        node_id(&self.diff, &mut self.builder, owner)
    }

    /// The name of node `node`, for messages.
    pub fn name(&self, node: u32) -> String {
        let held = self.diff.as_ref().map_or(0, |d| d.base().node_count() as u32);
        match &self.diff {
            Some(diff) if node < held => name_of_wire(diff.base().name_of_id(node)),
            _ => name_of_wire(self.builder.name_of_id(node - held)),
        }
    }

    pub fn rtype(fact: &Fact) -> RecordType {
        RecordType::from(fact.rtype)
    }
}

/// The id of the node `owner` in the checks' facts: the held zone's own id when
/// it has the node (on a reload compared with it), else the builder's, after
/// the held zone's ids.
fn node_id(diff: &Option<Diff>, builder: &mut BaseBuilder, owner: &[u8]) -> Result<u32, TooLarge> {
    let Some(diff) = diff else { return builder.node_id(owner) };
    if let Some(id) = diff.base().node_id(owner) {
        return Ok(id);
    }
    let held = u32::try_from(diff.base().node_count()).map_err(|_| TooLarge)?;
    held.checked_add(builder.node_id(owner)?).ok_or(TooLarge)
}

/// The file of position `position` in `runs` over `files`.
pub(super) fn file_at<'a>(runs: &[(u32, u32)], files: &'a [Arc<Path>], position: u32) -> &'a Arc<Path> {
    let run = runs.partition_point(|&(start, _)| start <= position).saturating_sub(1);
    let index = runs.get(run).map_or(0, |&(_, f)| f as usize);
    &files[index.min(files.len().saturating_sub(1))]
}

/// A lower-cased wire name as text (with its final dot), as hickory shows it.
pub(super) fn name_of_wire(name: &[u8]) -> String {
    use hickory_proto::serialize::binary::BinDecodable;
    Name::from_bytes(name).map(|n| n.to_string()).unwrap_or_default()
}
