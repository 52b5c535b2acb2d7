//! The DNS side: wire parsing ([`wire`]), the answer engine ([`answer`]), TSIG
//! ([`tsig`]), the two transports that feed it ([`udp`], [`tcp`]), RFC 2136
//! UPDATE ([`update`] on the wire, [`updater`] handing it to the writer), and
//! zone transfers out over TCP ([`xfr`]).

mod additional;
pub mod answer;
pub mod cookie;
pub mod mmsg;
mod opt;
pub mod rrl;
pub mod tcp;
pub mod tsig;
pub mod udp;
pub mod update;
pub mod updater;
pub mod wire;
pub mod xfr;

pub use answer::{Outcome, Responder};
