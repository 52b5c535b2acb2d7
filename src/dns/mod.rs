//! The DNS side: wire parsing ([`wire`]), the answer engine ([`answer`]), TSIG
//! ([`tsig`]), the two transports that feed it ([`udp`], [`tcp`]), and zone
//! transfers out over TCP ([`xfr`]).

mod additional;
pub mod answer;
pub mod cookie;
pub mod mmsg;
mod opt;
pub mod rrl;
pub mod tcp;
pub mod tsig;
pub mod udp;
pub mod wire;
pub mod xfr;

pub use answer::{Outcome, Responder};
