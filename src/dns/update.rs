//! RFC 2136 UPDATE on the wire: recognising the opcode, reading the message into
//! an [`Update`] (zone, prerequisite and update sections; the TSIG is verified
//! apart, on the raw bytes), and writing the reply's header and zone section.
//! No state: what the message means is planned by [`crate::state::update`].
//!
//! A message that does not parse, or whose zone section is not one SOA question
//! (section 3.1.1), is FORMERR. UPDATE is the control path, not the query path:
//! it allocates.

use hickory_proto::op::{Header, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::state::update::Update;

pub const OPCODE_UPDATE: u8 = 5;

/// Whether `packet` is an UPDATE request (not a response).
pub fn is_update(packet: &[u8]) -> bool {
    packet.len() >= 12 && packet[2] & 0x80 == 0 && (packet[2] >> 3) & 0x0f == OPCODE_UPDATE
}

/// Reads the UPDATE `packet`; `key` is the TSIG key that signed it (verified).
/// The additional section (OPT, TSIG) is not read here.
pub fn parse(packet: &[u8], key: Option<Name>) -> Result<Update, ResponseCode> {
    let formerr = |_| ResponseCode::FormErr;
    let mut d = BinDecoder::new(packet);
    let header = Header::read(&mut d).map_err(formerr)?;
    if header.counts.queries != 1 {
        return Err(ResponseCode::FormErr);
    }
    let zone = Query::read(&mut d).map_err(formerr)?;
    if zone.query_type() != RecordType::SOA {
        return Err(ResponseCode::FormErr);
    }
    let mut read = |n: u16| -> Result<Vec<Record>, ResponseCode> {
        (0..n).map(|_| Record::read(&mut d).map_err(formerr)).collect()
    };
    let prerequisites = read(header.counts.answers)?;
    let updates = read(header.counts.authorities)?;
    Ok(Update { zone: zone.name().clone(), class: zone.query_class(), key, prerequisites, updates })
}

/// Writes the reply to the UPDATE `packet` into `out`: the header with `rcode`,
/// and the zone section echoed when it parsed (`question_end` past it, else 12).
pub fn reply(packet: &[u8], question_end: usize, rcode: ResponseCode, out: &mut Vec<u8>) {
    out.clear();
    let Some(head) = packet.get(..12) else { return };
    let zone = packet.get(12..question_end).filter(|z| !z.is_empty());
    out.extend_from_slice(&head[..2]);
    out.push(0x80 | (OPCODE_UPDATE << 3));
    out.push(u16::from(rcode) as u8 & 0x0f);
    out.extend_from_slice(&u16::from(zone.is_some()).to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(zone.unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode};
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::{DNSClass, RData};

    fn update_message() -> Message {
        let mut m = Message::new(7, MessageType::Query, OpCode::Update);
        let mut zone = Query::query(Name::from_ascii("example.test.").unwrap(), RecordType::SOA);
        zone.set_query_class(DNSClass::IN);
        m.add_query(zone);
        let name = Name::from_ascii("_acme-challenge.example.test.").unwrap();
        m.add_authority(Record::from_rdata(name.clone(), 60, RData::TXT(TXT::new(vec!["tok".into()]))));
        let mut del = Record::update0(name, 0, RecordType::TXT);
        del.dns_class = DNSClass::ANY;
        m.add_answer(del);
        m
    }

    #[test]
    fn reads_the_sections_of_an_update() {
        let bytes = update_message().to_vec().unwrap();
        assert!(is_update(&bytes));
        let u = parse(&bytes, None).unwrap();
        assert_eq!(u.zone, Name::from_ascii("example.test.").unwrap());
        assert_eq!(u.prerequisites.len(), 1);
        assert_eq!(u.prerequisites[0].dns_class, DNSClass::ANY);
        assert!(matches!(u.prerequisites[0].data, RData::Update0(RecordType::TXT)));
        assert_eq!(u.updates.len(), 1);
        let mut out = Vec::new();
        reply(&bytes, 12 + 18, ResponseCode::NXRRSet, &mut out);
        let r = Message::from_vec(&out).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXRRSet);
        assert_eq!(r.metadata.op_code, OpCode::Update);
        assert_eq!(r.queries.len(), 1);
    }

    #[test]
    fn malformed_updates_are_formerr() {
        let bytes = update_message().to_vec().unwrap();
        for cut in [12, 20, 31, bytes.len() - 1] {
            assert_eq!(parse(&bytes[..cut], None).err(), Some(ResponseCode::FormErr), "cut at {cut}");
        }
        let mut two_zones = bytes.clone();
        two_zones[5] = 2;
        assert_eq!(parse(&two_zones, None).err(), Some(ResponseCode::FormErr));
        let mut not_soa = bytes.clone();
        // The zone's type follows its 14-byte name.
        not_soa[12 + 14 + 1] = 1;
        assert_eq!(parse(&not_soa, None).err(), Some(ResponseCode::FormErr));
    }
}
