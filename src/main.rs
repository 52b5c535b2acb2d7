//! The `lbdns` command: `lbdns [--config PATH]` serves, `lbdns check` validates,
//! `export` / `import` move the API state, and the client commands (`lbdns::client`)
//! talk to a running server.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lbdns::config::Secrets;
use lbdns::{App, Sources};
use sd_notify::NotifyState;
use tracing::{error, info, warn};

/// EX_USAGE from sysexits.h: the configuration is wrong.
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(name = "lbdns", version, about = "A load-balancing authoritative DNS server")]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = "lbdns.toml")]
    config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate config, zones and GeoIP database, then exit.
    Check {
        /// Do not read secret files (admin token, cookie secret, TSIG secrets, etcd
        /// password and client key), e.g. when only the service may read them.
        #[arg(long)]
        no_secrets: bool,
    },
    /// Print the API state of the configured store (embedded or etcd) as JSON.
    Export,
    /// Load a JSON export into the configured store, which must be empty.
    Import {
        /// The file `lbdns export` wrote ("-" = standard input).
        file: PathBuf,
    },
    /// Print a new TSIG key as a BIND key clause (for `secret_file`, `nsupdate -k`,
    /// `dig -k`, `kdig -k`).
    TsigKeygen {
        /// The key name, as clients send it (e.g. update-key.).
        name: String,
        /// The HMAC algorithm.
        #[arg(short = 'a', long = "algorithm", value_enum, default_value_t = KeyAlgorithm::HmacSha256)]
        algorithm: KeyAlgorithm,
    },
    /// DNSSEC keys of a zone with a [zone.dnssec] table.
    #[command(subcommand)]
    Dnssec(DnssecCommand),
    #[command(flatten)]
    Client(lbdns::client::Command),
}

#[derive(Subcommand)]
enum DnssecCommand {
    /// Write a new CSK (K<zone>+<alg>+<tag>.key and .private) into the zone's key_dir.
    Keygen {
        /// The zone, as in [[zone]] origin.
        zone: String,
        /// Add a second key to a key_dir that holds one (for a rollover).
        #[arg(long)]
        add: bool,
    },
    /// Print one SHA-256 DS record per key of the zone, for the parent or a trust anchor.
    Ds {
        /// The zone, as in [[zone]] origin.
        zone: String,
    },
}

/// `tsig-keygen -a`: the algorithms `[[tsig]]` accepts.
#[derive(Clone, Copy, ValueEnum)]
enum KeyAlgorithm {
    HmacSha256,
    HmacSha512,
    HmacSha1,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    // Before any thread starts: the allocator's arenas are chosen per thread.
    lbdns::memory::configure();
    let cli = Cli::parse();
    lbdns::logging::init(match cli.log_format {
        LogFormat::Text => lbdns::logging::Format::Text,
        LogFormat::Json => lbdns::logging::Format::Json,
    });
    // A panic anywhere is a bug: stop the whole process (systemd restarts it) rather
    // than go on with a dead worker thread silently dropping its share of queries.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("lbdns: internal error, stopping: {info}");
        std::process::abort();
    }));
    match cli.command {
        Some(Command::Check { no_secrets }) => check(&cli.config, no_secrets),
        Some(Command::Export) => transfer(&cli.config, None),
        Some(Command::Import { file }) => transfer(&cli.config, Some(&file)),
        Some(Command::TsigKeygen { name, algorithm }) => tsig_keygen(&name, algorithm),
        Some(Command::Dnssec(c)) => dnssec(&cli.config, c),
        Some(Command::Client(c)) => ExitCode::from(lbdns::client::run(&cli.config, &c)),
        None => serve(&cli.config),
    }
}

fn dnssec(config: &std::path::Path, command: DnssecCommand) -> ExitCode {
    let zone = match &command {
        DnssecCommand::Keygen { zone, .. } | DnssecCommand::Ds { zone } => zone,
    };
    let (origin, spec) = match lbdns::config::dnssec_zone(config, zone) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("lbdns dnssec: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let text = origin.to_ascii();
    let result = match command {
        DnssecCommand::Keygen { add, .. } => lbdns::dnssec::keys::generate(&spec.key_dir, &text, spec.algorithm, add)
            .map(|file| vec![format!("wrote {} and its .private file", file.display())]),
        DnssecCommand::Ds { .. } => lbdns::dnssec::keys::load_dir(&spec.key_dir, &text)
            .map(|keys| lbdns::dnssec::ZoneKeys::new(&origin, keys).ds_lines(&text)),
    };
    match result {
        Ok(lines) => {
            let mut out = std::io::stdout().lock();
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lbdns dnssec: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn tsig_keygen(name: &str, algorithm: KeyAlgorithm) -> ExitCode {
    let algorithm = match algorithm {
        KeyAlgorithm::HmacSha256 => lbdns::tsig::Algorithm::HmacSha256,
        KeyAlgorithm::HmacSha512 => lbdns::tsig::Algorithm::HmacSha512,
        KeyAlgorithm::HmacSha1 => lbdns::tsig::Algorithm::HmacSha1,
    };
    let name = match lbdns::config::parse_fqdn(name) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("lbdns tsig-keygen: key name: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match lbdns::tsig::keygen(&name, algorithm) {
        Ok(clause) => {
            let _ = std::io::stdout().write_all(clause.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lbdns tsig-keygen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path, no_secrets: bool) -> ExitCode {
    let secrets = if no_secrets { Secrets::Skip } else { Secrets::Read };
    match Sources::load_with(path, secrets) {
        Ok(s) => {
            // Start-up refuses an empty state database: so does check.
            if s.config.etcd.is_none() {
                if let Err(e) = lbdns::persist::sqlite::check_file(&s.config.admin.state_dir) {
                    eprintln!("{}: [admin] {e}", s.config.path.display());
                    return ExitCode::from(EXIT_CONFIG);
                }
                warn_refused_changes(&s);
            }
            warn_health_files(&s);
            let records: usize = s.zones.iter().map(|z| z.records).sum();
            let (zones, pools) = (s.zones.len(), s.pools.len());
            // A closed pipe (`lbdns check | head -c 1`) is no reason to panic.
            let _ = writeln!(
                std::io::stdout(),
                "{}: ok ({}, {}, {})",
                path.display(),
                count(zones, "zone"),
                count(records, "record"),
                count(pools, "pool")
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems.0 {
                eprintln!("{p}");
            }
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Stored API changes that the files now refuse do not stop a start (each is left
/// out and logged), so they do not fail `check` either, but `check` says so. A
/// store this user cannot open (the service's own state directory) is not read.
fn warn_refused_changes(s: &Sources) {
    let file = s.config.admin.state_dir.join("lbdns.sqlite3");
    if !file.is_file() {
        return;
    }
    let Ok(overlay) = lbdns::persist::sqlite::read(&s.config.admin.state_dir) else { return };
    if let Some(e) = lbdns::control::stored_changes_refused(s, &overlay) {
        eprintln!(
            "{}: warning: API changes stored in {} that the config or zone files now refuse will be left out at start: {e}",
            s.config.path.display(),
            file.display()
        );
    }
}

/// Lines of the health files that start-up would ignore (and log) do not fail
/// `check` either, but `check` names them, FILE:LINE as start-up does.
fn warn_health_files(s: &Sources) {
    let pools = s.pools.iter().filter_map(|p| p.health.health_file());
    let mut paths: Vec<&std::path::PathBuf> = s.config.health_file.iter().chain(pools).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        for p in lbdns::health::file::HealthFile::read(path).problems {
            eprintln!("warning: health file {p} (the line is ignored)");
        }
    }
}

/// "1 zone", "2 zones".
fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// `export` (no file) or `import FILE`.
fn transfer(path: &std::path::Path, import: Option<&std::path::Path>) -> ExitCode {
    let config = match lbdns::config::load(path) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("{problems}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let text = match import {
        Some(f) if f.as_os_str() == "-" => {
            let mut t = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut t) {
                eprintln!("cannot read standard input: {e}");
                return ExitCode::FAILURE;
            }
            Some(t)
        }
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("cannot read {}: {e}", f.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("cannot start the runtime");
        return ExitCode::FAILURE;
    };
    let result = rt.block_on(async {
        match &text {
            None => match lbdns::persist::transfer::export(&config).await {
                Ok(json) => print_export(&json).map(|()| 0),
                Err(e) => Err(e.to_string()),
            },
            Some(t) => lbdns::persist::transfer::import(&config, t).await.map_err(|e| e.to_string()),
        }
    });
    match (result, import) {
        (Ok(_), None) => ExitCode::SUCCESS,
        (Ok(n), Some(f)) => {
            eprintln!("imported {n} entries from {}", f.display());
            ExitCode::SUCCESS
        }
        (Err(e), _) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes an export to stdout. A reader that stops early (`lbdns export | head`)
/// closes the pipe: that ends the output quietly, as for any Unix filter.
fn print_export(json: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(json.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("cannot write the export: {e}")),
        _ => Ok(()),
    }
}

fn serve(path: &std::path::Path) -> ExitCode {
    let sources = match Sources::load(path) {
        Ok(s) => s,
        Err(problems) => {
            for p in &problems.0 {
                error!("{p}");
                eprintln!("{p}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Every TCP connection is a file descriptor: lift the soft limit to the hard one
    // (1024 by default, 524288 under systemd) so max_tcp_connections can be reached.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if (n as usize) < sources.config.dns.max_tcp_connections + 256 => {
            warn!(limit = n, "the open-file limit is below max_tcp_connections + 256; raise LimitNOFILE")
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "cannot raise the open-file limit"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().worker_threads(2).build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = match App::bind(sources).await {
            Ok(a) => a,
            Err(e) => {
                error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        // Signal handlers go in before anyone is told we are ready: a SIGHUP or
        // SIGTERM sent right after the ready line must not meet the default action.
        use tokio::signal::unix::{SignalKind, signal};
        let signals = (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
        let (Ok(hup), Ok(term), Ok(int)) = signals else {
            error!("cannot install signal handlers");
            return ExitCode::FAILURE;
        };
        // What reading the config and zones freed goes back to the system.
        lbdns::memory::give_back();
        let line = app.ready_line();
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        info!("{line}");
        notify(&[NotifyState::Ready]);
        tokio::spawn(reload_on_sighup(hup, app.control()));
        if let Some(interval) = sd_notify::watchdog_enabled() {
            tokio::spawn(watchdog(interval));
        }
        let result = app
            .run(async {
                shutdown_signal(term, int).await;
                notify(&[NotifyState::Stopping]);
            })
            .await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Tells systemd (when `NOTIFY_SOCKET` is set) about state changes.
fn notify(state: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(state) {
            tracing::warn!(error = %e, "sd_notify failed");
        }
    }
}

/// SIGHUP: reload config, zones and token file as one swap, telling systemd.
async fn reload_on_sighup(mut hup: tokio::signal::unix::Signal, control: lbdns::app::Control) {
    while hup.recv().await.is_some() {
        info!("SIGHUP received: reloading");
        let mut states = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        notify(&states);
        // Errors are logged and counted by reload(); the old state keeps serving.
        let _ = control.reload().await;
        notify(&[NotifyState::Ready]);
    }
}

/// Pings the systemd watchdog at half its interval while the runtime is alive.
async fn watchdog(interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tick.tick().await;
        notify(&[NotifyState::Watchdog]);
    }
}

async fn shutdown_signal(mut term: tokio::signal::unix::Signal, mut int: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
}
