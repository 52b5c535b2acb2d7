//! The DNS side: wire parsing ([`wire`]), the answer engine ([`answer`]), TSIG
//! ([`tsig`]) and the two transports that feed it ([`udp`], [`tcp`]).

mod additional;
pub mod answer;
pub mod cookie;
mod dnssec;
pub mod mmsg;
mod opt;
pub mod rrl;
pub mod tcp;
pub mod tsig;
pub mod udp;
pub mod wire;

pub use answer::{Outcome, Responder};
