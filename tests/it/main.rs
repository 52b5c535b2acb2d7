//! The one integration test binary: the real server on port 0, real sockets, a real
//! DNS client (hickory-proto messages over UDP and TCP), and the built binary for
//! the command-line cases and `dig`.

mod admin;
mod answers;
mod backend;
mod browser;
mod cli;
mod client;
mod cluster;
mod cluster_push;
mod cookies;
mod core;
mod data;
mod dnssec;
mod dnssec_types;
mod docs;
mod events;
mod explain;
mod fuzz_regressions;
mod geo;
mod geoip_gen;
mod harness;
mod health;
mod health_checks;
mod health_dns_tls;
mod health_weights;
mod hostile;
mod imports;
mod install;
mod knot;
mod limits;
mod logs;
mod memory;
mod ops;
mod overrides;
mod pools;
mod pushed;
mod redirect;
mod reload;
mod scale;
mod store;
mod tsig;
mod ui;
mod update;
mod xfr;
