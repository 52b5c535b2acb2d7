//! `lbdns` as a client of a running server: `status`, `pools`, `members`,
//! `drain`, `undrain`, `weight`, `health`, `records`, `events` and `explain` over the admin API.
//!
//! Each command reads what it needs from the API (`api`), and prints either the
//! server's JSON as it came (`--json`, for scripts) or tables (`render`). Where
//! to connect and the token come from `--server` / `--token-file`, else from the
//! `[admin]` table of `--config` (`target`). The exit code says what went wrong:
//! 0 success, 1 the server refused (its message is printed), 2 a usage problem
//! (arguments, config, token file), 3 the server could not be reached.

mod api;
mod explain;
mod render;
mod target;

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

pub use api::Api;
pub use target::Target;

/// The client subcommands, flattened into the `lbdns` command line.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Whether the server is ready, its zones, and its pools' members by state.
    Status {
        #[command(flatten)]
        conn: Connection,
    },
    /// Every pool in one table, or one pool with its members.
    Pools {
        /// The pool (final dot optional).
        name: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// The members of a pool: state, weight, region, last change and error.
    Members {
        /// The pool (final dot optional).
        pool: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Take a member out of answers (`"enabled": false`), whatever its health.
    Drain {
        /// The pool (final dot optional).
        pool: String,
        /// The member's address, as the pool lists it.
        address: IpAddr,
        #[command(flatten)]
        conn: Connection,
    },
    /// Put a drained member back into answers (when its health allows).
    Undrain {
        /// The pool (final dot optional).
        pool: String,
        /// The member's address, as the pool lists it.
        address: IpAddr,
        #[command(flatten)]
        conn: Connection,
    },
    /// Set a member's weight (for weighted pools).
    Weight {
        /// The pool (final dot optional).
        pool: String,
        /// The member's address, as the pool lists it.
        address: IpAddr,
        /// The new weight (at least 1).
        weight: u32,
        #[command(flatten)]
        conn: Connection,
    },
    /// Push a member's health over its probes (down or up), or hand it back to them (auto).
    Health {
        /// The pool (final dot optional).
        pool: String,
        /// The member's address, as the pool lists it.
        address: IpAddr,
        /// down, up or auto.
        state: PushedState,
        /// How long the override lasts (e.g. 60s, 10m, 2h) [default: until changed].
        #[arg(long = "for", value_name = "DURATION")]
        expires_in: Option<String>,
        /// Why (shown in the API, events and the status page).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// The RRsets a zone serves now, with where each comes from.
    Records {
        /// The zone's origin (final dot optional).
        zone: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Recent health transitions, newest first: members (up, down, drained) and pools left with no member up (all-down).
    Events {
        #[command(flatten)]
        conn: Connection,
    },
    /// Why a client gets the answer it gets: zone, node, pool, members, answer.
    Explain {
        /// The name asked (final dot optional).
        name: String,
        /// The record type asked (A, AAAA, MX, ...).
        #[arg(value_name = "TYPE")]
        rtype: String,
        /// The client's address (the query's source).
        #[arg(long)]
        client: IpAddr,
        /// The EDNS client subnet a resolver would send for it, e.g. 198.51.100.0/24.
        #[arg(long, value_name = "CIDR")]
        ecs: Option<ipnet::IpNet>,
        #[command(flatten)]
        conn: Connection,
    },
}

/// The states `lbdns health` pushes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PushedState {
    Down,
    Up,
    Auto,
}

/// Where the server is, how to authenticate, how to print.
#[derive(Debug, Args)]
pub struct Connection {
    /// The admin API: `HOST:PORT` or a URL [default: `[admin] listen` of --config].
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The file holding the bearer token [default: `[admin] token_file` of --config].
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Print the server's JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Why a client command failed; [`ClientError::exit_code`] maps it to the exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--server {given}: {problem}")]
    BadServer { given: String, problem: String },
    #[error("{0}; give --config, or --server and --token-file")]
    Config(String),
    #[error(transparent)]
    Token(#[from] crate::secrets::TokenError),
    #[error("cannot set up the HTTP client: {0}")]
    Setup(#[source] reqwest::Error),
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{message} (HTTP {status}){hint}")]
    Server { status: u16, message: String, hint: &'static str },
    #[error("the server at {url} answered with something other than lbdns JSON: {reason}")]
    Unexpected { url: String, reason: String },
    #[error("pool {pool} has no member {address} (drain, undrain and weight only change existing members)")]
    NoMember { pool: String, address: IpAddr },
}

impl ClientError {
    /// 1: the server said no; 2: the command cannot be carried out as given;
    /// 3: the server cannot be reached.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::BadServer { .. } | ClientError::Config(_) | ClientError::Token(_) => 2,
            ClientError::Unreachable { .. } => 3,
            ClientError::Setup(_)
            | ClientError::Server { .. }
            | ClientError::Unexpected { .. }
            | ClientError::NoMember { .. } => 1,
        }
    }
}

impl Command {
    fn connection(&self) -> &Connection {
        match self {
            Command::Status { conn }
            | Command::Pools { conn, .. }
            | Command::Members { conn, .. }
            | Command::Drain { conn, .. }
            | Command::Undrain { conn, .. }
            | Command::Weight { conn, .. }
            | Command::Health { conn, .. }
            | Command::Records { conn, .. }
            | Command::Events { conn }
            | Command::Explain { conn, .. } => conn,
        }
    }
}

/// Runs `command` against the server `config` (or the connection options) names,
/// prints its output or error, and returns the exit code.
pub fn run(config: &Path, command: &Command) -> u8 {
    let conn = command.connection();
    let result = Target::resolve(config, conn).and_then(Api::new).and_then(|api| {
        let out = render::Output::for_stdout(conn.json);
        execute(&api, command, &out)
    });
    match result {
        Ok(text) => match print(&text) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("lbdns: cannot write the output: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("lbdns: {e}");
            e.exit_code()
        }
    }
}

/// What `command` prints.
fn execute(api: &Api, command: &Command, out: &render::Output) -> Result<String, ClientError> {
    match command {
        Command::Status { .. } => status(api, out),
        Command::Pools { name: None, .. } => {
            let all = api.get(&["pools"])?;
            out.json_or(&all, || Ok(render::pools(out, &api::decode::<Vec<api::Pool>>(api, &all)?)))
        }
        Command::Pools { name: Some(name), .. } => {
            let pool = api.get(&["pools", name])?;
            out.json_or(&pool, || Ok(render::pool(out, &api::decode(api, &pool)?)))
        }
        Command::Members { pool, .. } => {
            let pool = api.get(&["pools", pool])?;
            out.json_or(&pool, || Ok(render::members(out, &api::decode::<api::Pool>(api, &pool)?.members)))
        }
        Command::Drain { pool, address, .. } => change(api, out, pool, *address, json!({"enabled": false})),
        Command::Undrain { pool, address, .. } => change(api, out, pool, *address, json!({"enabled": true})),
        Command::Weight { pool, address, weight, .. } => change(api, out, pool, *address, json!({"weight": weight})),
        Command::Health { pool, address, state, expires_in, reason, .. } => {
            let state = match state {
                PushedState::Down => "down",
                PushedState::Up => "up",
                PushedState::Auto => "auto",
            };
            let mut body = json!({ "state": state });
            if let Some(d) = expires_in {
                body["expires_in"] = json!(d);
            }
            if let Some(r) = reason {
                body["reason"] = json!(r);
            }
            let after = api.put(&["pools", pool, "members", &address.to_string(), "health"], &body)?;
            out.json_or(&after, || Ok(render::members(out, &[api::decode::<api::Member>(api, &after)?])))
        }
        Command::Records { zone, .. } => {
            let records = api.get(&["zones", zone, "records"])?;
            out.json_or(&records, || Ok(render::records(out, &api::decode(api, &records)?)))
        }
        Command::Events { .. } => {
            let events = api.get(&["events"])?;
            out.json_or(&events, || Ok(render::events(out, &api::decode::<Vec<api::Event>>(api, &events)?)))
        }
        Command::Explain { name, rtype, client, ecs, .. } => {
            let (client, ecs) = (client.to_string(), ecs.map(|n| n.to_string()));
            let mut query = vec![("name", name.as_str()), ("type", rtype.as_str()), ("client", client.as_str())];
            query.extend(ecs.as_deref().map(|e| ("ecs", e)));
            let why = api.get_query(&["explain"], &query)?;
            out.json_or(&why, || Ok(explain::render(out, &why)))
        }
    }
}

/// `/readyz`, the zones and the pools in one view.
fn status(api: &Api, out: &render::Output) -> Result<String, ClientError> {
    let ready = api.ready()?;
    let zones = api.get(&["zones"])?;
    let pools = api.get(&["pools"])?;
    let typed: Vec<api::Pool> = api::decode(api, &pools)?;
    if out.json {
        let summary: Vec<Value> = typed.iter().map(render::pool_summary_json).collect();
        let v = json!({"server": api.url(), "ready": ready, "zones": zones, "pools": summary});
        return Ok(render::json(&v));
    }
    Ok(render::status(out, api.url(), ready, &api::decode::<Vec<api::Zone>>(api, &zones)?, &typed))
}

/// A member PUT, refused here for a member the pool does not have: the API would
/// add it, and a mistyped address must not become a new member.
fn change(api: &Api, out: &render::Output, pool: &str, address: IpAddr, body: Value) -> Result<String, ClientError> {
    let current: api::Pool = api::decode(api, &api.get(&["pools", pool])?)?;
    if !current.members.iter().any(|m| m.address.parse::<IpAddr>().is_ok_and(|a| a == address)) {
        return Err(ClientError::NoMember { pool: current.name, address });
    }
    let after = api.put(&["pools", pool, "members", &address.to_string()], &body)?;
    let typed: api::Pool = api::decode(api, &after)?;
    out.json_or(&after, || Ok(render::changed(&typed, address)))
}

/// Writes to stdout; a reader that stops early (`| head`) ends it quietly, any
/// other failure (a full disk) is an error: a script must not take half a table.
fn print(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}
