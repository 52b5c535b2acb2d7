//! The running server: binds every socket, builds the first snapshot, and runs the
//! UDP workers, TCP listeners, the writer and the admin server until shutdown.
//!
//! `App::bind` does everything that can fail before the `ready` line (open the
//! state store, run the first probe round, bind sockets); `App::run` only serves.
//! Tests bind on port 0 in-process and read the real addresses back.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};
use tracing::info;

use crate::admin::{self, AdminState};
use crate::config::{ClusterHealth, Config, EtcdSettings, RedirectSettings};
use crate::control::{ClusterLink, Command, Writer, WriterParts, WriterThread};
use crate::counters::Stats;
use crate::dns::cookie::Cookies;
use crate::dns::{tcp, udp};
use crate::health::{ProbeResult, Prober, Votes};
use crate::metrics::Metrics;
use crate::persist::Store;
use crate::persist::etcd::{self, EtcdStore};
use crate::persist::sqlite::SqliteStore;
use crate::problem::{Problem, Problems};
use crate::shutdown::{Shutdown, Stopper};
use crate::snapshot::Snapshot;
use crate::sources::{Reusable, Sources};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Store(#[from] crate::persist::StoreError),
    #[error(transparent)]
    Etcd(#[from] crate::persist::etcd::EtcdError),
    #[error(transparent)]
    State(#[from] crate::control::StateError),
}

/// A bound, ready-to-run server.
pub struct App {
    sources: Sources,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stats: Arc<Stats>,
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<tokio::net::TcpListener>,
    admin: tokio::net::TcpListener,
    dns_addrs: Vec<SocketAddr>,
    writer: Writer,
    probe_rx: mpsc::Receiver<ProbeResult>,
    cmd_rx: mpsc::Receiver<Command>,
    control: Control,
    redirect: Vec<tokio::net::TcpListener>,
    /// Made before anything is spawned, so the etcd tasks stop with the rest.
    stopper: Stopper,
    shutdown: Shutdown,
    /// The IXFR journals (the transfer task writes, TCP transfers read).
    journals: Arc<crate::journal::Journals>,
    /// Told by the writer after each swap; the transfer task waits on it.
    published: Arc<tokio::sync::Notify>,
}

/// What can be done to a running server from outside: reload it.
#[derive(Clone)]
pub struct Control {
    config_path: std::path::PathBuf,
    writer: mpsc::Sender<Command>,
    token: Arc<ArcSwap<Option<String>>>,
    metrics: Metrics,
    events: crate::control::Events,
    /// The last reload's and API writes' results, for the status page.
    outcomes: crate::control::Outcomes,
    redirect: Option<Arc<ArcSwap<RedirectSettings>>>,
    /// What a reload may take from the sources in effect: it parses again only
    /// the zone files whose bytes changed, and the pools of a changed config.
    reusable: Arc<std::sync::Mutex<Reusable>>,
}

impl Control {
    /// Reloads config, zone files and token file as one swap. On any problem the
    /// old state keeps serving; every problem is logged with file and line and
    /// returned, and counted in `lbdns_reloads_total{result="error"}`.
    pub async fn reload(&self) -> Result<(), Problems> {
        let path = self.config_path.clone();
        let before = self.reusable.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let sources = Sources::reload(&path, &before)?;
            let token = sources.admin_token.clone();
            Ok::<_, Problems>((sources, token))
        })
        .await
        .unwrap_or_else(|e| Err(Problems(vec![Problem::new(&self.config_path, 0, format!("reload failed: {e}"))])));
        let result = match loaded {
            Ok((sources, token)) => {
                let redirect = sources.config.redirect.clone();
                let reusable = sources.reusable.clone();
                let (tx, rx) = tokio::sync::oneshot::channel();
                let sent = self.writer.send(Command::Reload(Box::new(sources), tx)).await;
                match (sent, rx.await) {
                    (Ok(()), Ok(Ok(()))) => {
                        self.token.store(Arc::new(token));
                        *self.reusable.lock().unwrap_or_else(|e| e.into_inner()) = reusable;
                        match (&self.redirect, redirect) {
                            (Some(current), Some(new)) => current.store(Arc::new(new)),
                            (None, Some(_)) | (Some(_), None) => {
                                tracing::warn!("adding or removing [redirect] takes effect on restart")
                            }
                            (None, None) => {}
                        }
                        Ok(())
                    }
                    (_, Ok(Err(e))) => Err(Problems(vec![Problem::new(&self.config_path, 0, e.to_string())])),
                    _ => Err(Problems(vec![Problem::new(&self.config_path, 0, "the server is stopping")])),
                }
            }
            Err(p) => Err(p),
        };
        self.outcomes.reload(result.as_ref().err().map(Problems::to_string));
        match &result {
            Ok(()) => {
                self.metrics.reload(true);
                info!("reload done");
            }
            Err(problems) => {
                self.metrics.reload(false);
                for p in &problems.0 {
                    tracing::error!("reload failed, old state kept: {p}");
                }
            }
        }
        result
    }
}

impl App {
    /// Opens the state store, runs the first probe round, builds the first
    /// snapshot and binds every socket. Nothing in it blocks a runtime thread
    /// (the store is awaited), so any tokio runtime will do.
    pub async fn bind(sources: Sources) -> Result<App, AppError> {
        let cfg = &sources.config;
        let token = sources.admin_token.clone();
        let (mut store, etcd) = open_store(cfg).await?;
        let journals = stored_journals(&mut *store).await;
        let published = Arc::new(tokio::sync::Notify::new());
        let (probe_tx, probe_rx) = mpsc::channel(4096);
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::empty(cfg.dns.edns_udp_size)));
        let stats = Arc::new(Stats::default());
        let metrics = Metrics::new(stats.clone(), snapshot.clone());
        let (stopper, shutdown) = Shutdown::new();
        let cluster = etcd.map(|(settings, conn)| join_cluster(&settings, conn, &shutdown));
        let events = crate::control::Events::default();
        let outcomes = crate::control::Outcomes::default();
        let mut writer = Writer::new(WriterParts {
            sources: sources.clone(),
            store,
            prober: Prober::new(probe_tx, sources.config.probe_source),
            snapshot: snapshot.clone(),
            metrics: metrics.clone(),
            cluster,
            events: events.clone(),
            outcomes: outcomes.clone(),
            published: published.clone(),
            health_files: watch_health_files(),
        })
        .await?;
        writer.start().await?;
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(256);
        let control = Control {
            config_path: cfg.path.clone(),
            writer: cmd_tx,
            token: Arc::new(ArcSwap::from_pointee(token)),
            metrics,
            events,
            outcomes,
            redirect: cfg.redirect.clone().map(|r| Arc::new(ArcSwap::from_pointee(r))),
            reusable: Arc::new(std::sync::Mutex::new(sources.reusable.clone())),
        };

        let (udp_sockets, tcp_listeners, dns_addrs) = bind_all_dns(cfg)?;
        let admin = tokio::net::TcpListener::bind(cfg.admin.listen)
            .await
            .map_err(|source| AppError::Bind { addr: cfg.admin.listen, source })?;
        let mut redirect = Vec::new();
        for &addr in cfg.redirect.iter().flat_map(|r| r.listen.iter()) {
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|source| AppError::Bind { addr, source })?;
            redirect.push(l);
        }
        Ok(App {
            snapshot,
            stopper,
            shutdown,
            stats,
            sources,
            udp: udp_sockets,
            tcp: tcp_listeners,
            admin,
            dns_addrs,
            writer,
            probe_rx,
            cmd_rx,
            control,
            redirect,
            journals,
            published,
        })
    }

    /// A handle to reload the running server (SIGHUP does this).
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The DNS addresses actually bound (a `:0` port resolved).
    pub fn dns_addrs(&self) -> &[SocketAddr] {
        &self.dns_addrs
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or(self.sources.config.admin.listen)
    }

    /// The HTTP redirect addresses actually bound.
    pub fn redirect_addrs(&self) -> Vec<SocketAddr> {
        self.redirect.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    /// `lbdns ready dns=ADDR[,ADDR…] admin=ADDR`, then ` redirect=ADDR[,ADDR…]` when
    /// `[redirect]` is configured.
    pub fn ready_line(&self) -> String {
        let dns: Vec<String> = self.dns_addrs.iter().map(|a| a.to_string()).collect();
        let mut line = format!("lbdns ready dns={} admin={}", dns.join(","), self.admin_addr());
        let redirect: Vec<String> = self.redirect_addrs().iter().map(|a| a.to_string()).collect();
        if !redirect.is_empty() {
            line.push_str(&format!(" redirect={}", redirect.join(",")));
        }
        line
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight work
    /// finish, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let transfers = self.transfer_task();
        let mut threads = Vec::new();
        let rrl = self.sources.config.dns.rrl.map(|c| Arc::new(crate::dns::rrl::Rrl::new(c)));
        let dns_cfg = &self.sources.config.dns;
        let cookies = dns_cfg.cookies.then(|| {
            Arc::new(match dns_cfg.cookie_secret {
                Some(secret) => Cookies::new(secret),
                None => Cookies::random(),
            })
        });
        let updater = self.control.updater(self.snapshot.clone());
        for (i, sock) in self.udp.into_iter().enumerate() {
            let seed = fastrand::u64(..) ^ i as u64;
            threads.push(udp::spawn_worker(
                sock,
                self.snapshot.clone(),
                self.stats.worker(),
                self.shutdown.clone(),
                seed,
                udp::UdpSettings { rrl: rrl.clone(), cookies: cookies.clone(), updater: Some(updater.clone()) },
            )?);
        }
        let mut tasks = Vec::new();
        let cfg = &self.sources.config;
        for listener in self.tcp {
            let settings = tcp::TcpSettings {
                idle_timeout: cfg.dns.tcp_idle_timeout,
                max_connections: cfg.dns.max_tcp_connections,
                cookies: cookies.clone(),
                updater: Some(updater.clone()),
                journals: self.journals.clone(),
            };
            tasks.push(tokio::spawn(tcp::serve(
                listener,
                self.snapshot.clone(),
                self.stats.worker(),
                settings,
                self.shutdown.clone(),
            )));
        }
        tasks.push(tokio::spawn(transfers.run(self.shutdown.clone())));
        let router = admin::router(self.control.admin_state(self.sources.config.admin.ui_public));
        let rates = self.control.metrics.answer_rates.clone();
        tasks.push(tokio::spawn(rates.run(self.snapshot.clone(), self.shutdown.clone())));
        let admin = tokio::spawn(crate::http::serve(self.admin, router, self.shutdown.clone()));
        let writer = WriterThread::spawn(self.writer, self.probe_rx, self.cmd_rx, self.shutdown.clone())?;

        if let Some(settings) = &self.control.redirect {
            let state = crate::redirect::RedirectState {
                settings: settings.clone(),
                snapshot: self.snapshot.clone(),
                metrics: self.control.metrics.clone(),
            };
            for listener in self.redirect {
                let app = crate::redirect::router(state.clone());
                tasks.push(tokio::spawn(crate::http::serve(listener, app, self.shutdown.clone())));
            }
        }

        shutdown.await;
        info!("shutting down");
        self.stopper.stop();
        for t in tasks {
            let _ = t.await;
        }
        writer.stopped().await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), admin).await;
        tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await
        .ok();
        Ok(())
    }
}

/// The IXFR journals kept in `store`; none (IXFR starts afresh) if they cannot be read.
async fn stored_journals(store: &mut dyn Store) -> Arc<crate::journal::Journals> {
    let journals = Arc::new(crate::journal::Journals::default());
    match store.load_journals().await {
        Ok(stored) => crate::xfr::restore(&journals, stored),
        Err(e) => tracing::warn!(error = %e, "cannot read the stored IXFR journals: IXFR starts afresh"),
    }
    journals
}

impl App {
    /// The task that keeps the IXFR journals and sends NOTIFY.
    fn transfer_task(&self) -> crate::xfr::TransferTask {
        crate::xfr::TransferTask {
            snapshot: self.snapshot.clone(),
            published: self.published.clone(),
            journals: self.journals.clone(),
            writer: self.control.writer.clone(),
        }
    }
}

/// The store `[cluster]` names: SQLite in `state_dir`, or etcd (with what the
/// watch and the health views need to reach it).
async fn open_store(cfg: &Config) -> Result<(Box<dyn Store>, Option<(EtcdSettings, etcd::Connector)>), AppError> {
    Ok(match &cfg.etcd {
        None => (Box::new(SqliteStore::open(&cfg.admin.state_dir)?), None),
        Some(e) => {
            let s = EtcdStore::open(e).await?;
            let conn = s.connector();
            (Box::new(s), Some((e.clone(), conn)))
        }
    })
}

impl Control {
    /// What the admin API's handlers share.
    /// Where the DNS transports hand UPDATE messages: to the writer, as the
    /// admin API hands its requests.
    fn updater(&self, snapshot: Arc<ArcSwap<Snapshot>>) -> crate::dns::updater::Updater {
        let writer = self.writer.clone();
        let submit: crate::dns::updater::Submit =
            Arc::new(move |u, reply| writer.try_send(Command::Update(Box::new(u), reply)).is_ok());
        crate::dns::updater::Updater::new(snapshot, submit)
    }

    fn admin_state(&self, ui_public: bool) -> AdminState {
        AdminState {
            auth_log: Arc::default(),
            token: self.token.clone(),
            writer: self.writer.clone(),
            metrics: self.metrics.clone(),
            events: self.events.clone(),
            outcomes: self.outcomes.clone(),
            ui_public,
        }
    }
}

/// Starts the health files' watcher and returns the writer's ends of its
/// channels; it ends when the writer, the other end of both, is gone.
fn watch_health_files() -> (watch::Sender<Vec<std::path::PathBuf>>, mpsc::Receiver<crate::health::file::FileUpdate>) {
    let (paths_tx, paths_rx) = watch::channel(Vec::new());
    let (file_tx, file_rx) = mpsc::channel(64);
    tokio::spawn(crate::health::file::watch(paths_rx, file_tx));
    (paths_tx, file_rx)
}

/// Starts the etcd watch (until shutdown) and the task that publishes this node's
/// health view, and returns the writer's ends of both.
fn join_cluster(settings: &EtcdSettings, conn: etcd::Connector, shutdown: &Shutdown) -> ClusterLink {
    let (remote_tx, remote_rx) = mpsc::channel(256);
    let (views_tx, views_rx) = watch::channel(Votes::new());
    // The watch starts with a full load of its own: it brings the other nodes'
    // health views, which the state loaded by the store leaves out.
    let watch = etcd::watch_loop(conn.clone(), settings.prefix.clone(), None, remote_tx);
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = watch => {}
            _ = stop.recv() => {}
        }
    });
    // Not tied to the shutdown: it revokes this node's lease when the writer, the
    // sender of the views, is gone, so the last view published is the writer's last.
    tokio::spawn(etcd::health_loop(conn, settings.prefix.clone(), settings.node.clone(), views_rx));
    info!(node = %settings.node, endpoints = %settings.endpoints.join(","), "state shared through etcd");
    ClusterLink {
        node: settings.node.clone(),
        quorum: settings.health == ClusterHealth::Quorum,
        probe_share: settings.probe_share,
        remote: Some(remote_rx),
        views: views_tx,
    }
}

/// Binds `threads` UDP sockets and one TCP listener on the same address and port.
/// With port 0 the kernel picks a UDP port, and we retry if TCP cannot have it.
/// The DNS sockets of every `[dns] listen` address: a UDP socket per worker
/// thread and a TCP listener each, and the addresses bound.
type DnsSockets = (Vec<std::net::UdpSocket>, Vec<tokio::net::TcpListener>, Vec<SocketAddr>);

fn bind_all_dns(cfg: &crate::config::Config) -> Result<DnsSockets, AppError> {
    let threads = match cfg.dns.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    let mut all: DnsSockets = Default::default();
    for &addr in &cfg.dns.listen {
        let (socks, listener, bound) = bind_dns(addr, threads)?;
        all.0.extend(socks);
        all.1.push(listener);
        all.2.push(bound);
    }
    Ok(all)
}

fn bind_dns(
    addr: SocketAddr,
    threads: usize,
) -> Result<(Vec<std::net::UdpSocket>, tokio::net::TcpListener, SocketAddr), AppError> {
    let err = |source| AppError::Bind { addr, source };
    let mut last = None;
    for _ in 0..20 {
        let first = udp::bind_reuseport(addr).map_err(err)?;
        let bound = first.local_addr().map_err(err)?;
        let tcp = match bind_tcp(bound) {
            Ok(l) => l,
            Err(e) if addr.port() == 0 => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(err(e)),
        };
        let mut socks = vec![first];
        for _ in 1..threads {
            socks.push(udp::bind_reuseport(bound).map_err(err)?);
        }
        return Ok((socks, tcp, bound));
    }
    Err(err(last.unwrap_or_else(|| io::Error::other("no free port"))))
}

fn bind_tcp(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    tokio::net::TcpListener::from_std(s.into())
}
