//! The DNS side: wire parsing ([`wire`]), the answer engine ([`answer`]), TSIG
//! ([`tsig`]), the two transports that feed it ([`udp`], [`tcp`]), and RFC 2136
//! UPDATE ([`update`] on the wire, [`updater`] handing it to the writer).

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

pub use answer::{Outcome, Responder};
