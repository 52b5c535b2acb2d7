//! One conformance suite for `persist::Store`, run against the embedded SQLite
//! store and against a real etcd (started here, as `cluster.rs` does; skipped
//! without the etcd binary unless LBDNS_REQUIRE_ETCD=1): the same puts, deletes
//! and override reverts, the same state after reopening, the same refusal to
//! import into a store that holds changes, the same export/import round trip,
//! and the same IXFR journal; and the etcd watch over large journal entries.
//! Both run on a current-thread runtime: the store is awaited and never blocks
//! its thread (the etcd store used to `block_in_place`, which panics there).

use std::collections::BTreeMap;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use lbdns::config::{AllDown, ClusterHealth, EtcdSettings, MemberConfig, PolicyName, PoolDef};
use lbdns::persist::etcd::{self, EtcdStore};
use lbdns::persist::sqlite::SqliteStore;
use lbdns::persist::{Store, StoreError, transfer};
use lbdns::state::overlay::{Change, MemberFields, Overlay, RRsetSource, StoredRRset};

use crate::cluster::Etcd;

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn api_pool(name: &str, weight: u32) -> Change {
    Change::PutPool(Box::new(PoolDef {
        name: n(name),
        policy: PolicyName::Weighted,
        ttl: 5,
        max_answers: 1,
        all_down: AllDown::Empty,
        fallback: vec![],
        health: Default::default(),
        members: vec![MemberConfig {
            address: "192.0.2.1".parse().unwrap(),
            weight,
            region: None,
            enabled: true,
            probe: None,
        }],
        line: 0,
    }))
}

/// Every kind of change: puts, a replacement, deletions, and reverted overrides
/// (one member, one whole pool, one RRset).
fn changes() -> Vec<Change> {
    let (zone, www, old) = (n("example.test."), n("www.example.test."), n("old.example.test."));
    let rrset = |name: &str, rtype| (zone.clone(), n(name), rtype);
    let member =
        |pool: &Name, a: &str, fields| Change::PutMember { pool: pool.clone(), address: a.parse().unwrap(), fields };
    vec![
        api_pool("api.example.test.", 3),
        api_pool("gone.example.test.", 1),
        api_pool("api.example.test.", 7),
        Change::DeletePool(n("gone.example.test.")),
        member(
            &www,
            "2001:db8::9",
            MemberFields { weight: None, region: Some("eu".into()), enabled: Some(false), probe: None },
        ),
        member(&www, "192.0.2.11", MemberFields::default()),
        Change::DeleteMember { pool: www.clone(), address: "192.0.2.10".parse().unwrap() },
        member(&old, "192.0.2.20", MemberFields { enabled: Some(false), ..Default::default() }),
        member(&old, "192.0.2.21", MemberFields { weight: Some(2), ..Default::default() }),
        Change::RevertPool { pool: old, members: vec!["192.0.2.20".parse().unwrap(), "192.0.2.21".parse().unwrap()] },
        member(&www, "192.0.2.12", MemberFields { weight: Some(4), ..Default::default() }),
        Change::RevertMember { pool: www, address: "192.0.2.12".parse().unwrap() },
        {
            let (zone, name, rtype) = rrset("new.example.test.", RecordType::A);
            Change::PutRRset { zone, name, rtype, set: StoredRRset::api(60, vec!["192.0.2.7".into()]) }
        },
        {
            let (zone, name, rtype) = rrset("static.example.test.", RecordType::AAAA);
            Change::DeleteRRset { zone, name, rtype }
        },
        {
            let (zone, name, rtype) = rrset("static.example.test.", RecordType::TXT);
            Change::DeleteRRset { zone, name, rtype }
        },
        {
            let (zone, name, rtype) = rrset("static.example.test.", RecordType::TXT);
            Change::RevertRRset { zone, name, rtype }
        },
    ]
}

/// The suite. `open(0)` opens (again) the store under test, `open(1)` another,
/// empty one of the same kind. It runs on a current-thread runtime: the store is
/// awaited, it never blocks the runtime's one thread.
async fn conformance(kind: &str, mut open: impl AsyncFnMut(usize) -> Box<dyn Store>) {
    let zone = n("example.test.");
    let mut store = open(0).await;
    assert_eq!(store.load().await.unwrap(), Overlay::default(), "{kind}: a new store is empty");
    let mut expected = Overlay::default();
    for c in changes() {
        store.apply(&c, &zone).await.unwrap_or_else(|e| panic!("{kind}: {c:?}: {e}"));
        expected.apply(&c, &zone);
    }
    drop(store);

    let loaded = open(0).await.load().await.unwrap();
    assert_eq!(loaded, expected, "{kind}: the state after reopening");
    let pools: Vec<&Name> = loaded.pools.keys().collect();
    assert_eq!(pools, [&n("api.example.test.")], "{kind}: put, replaced, deleted");
    assert_eq!(loaded.pools[&n("api.example.test.")].members[0].weight, 7, "{kind}: the replacement");
    assert_eq!(loaded.members.len(), 3, "{kind}: reverted overrides are gone: {:?}", loaded.members);
    assert_eq!(loaded.members[&(n("www.example.test."), "192.0.2.10".parse().unwrap())], None, "{kind}");
    assert_eq!(loaded.rrsets.len(), 2, "{kind}: {:?}", loaded.rrsets);
    assert_eq!(loaded.rrsets[&(zone.clone(), n("static.example.test."), RecordType::AAAA)], None, "{kind}");
    assert_eq!(loaded.serials[&zone], changes().len() as u32, "{kind}: one serial bump per change");

    let refused = open(0).await.import(&loaded).await.unwrap_err();
    assert!(matches!(refused, StoreError::Conflict(_)), "{kind}: import into a store with changes: {refused}");

    let doc = transfer::document(loaded.clone());
    let parsed = transfer::parse(&doc).unwrap();
    assert_eq!(parsed, loaded, "{kind}: the export document reads back as the state");
    let written = open(1).await.import(&parsed).await.unwrap();
    assert_eq!(written, 1 + 3 + 2 + 1, "{kind}: one entry per pool, member, RRset and serial");
    assert_eq!(open(1).await.load().await.unwrap(), loaded, "{kind}: the imported store after reopening");

    // One UPDATE message: several changes, one transaction, one serial increment;
    // an RRset an UPDATE wrote keeps its source.
    let mut by_update = StoredRRset::api(30, vec!["\"token\"".into()]);
    by_update.source = RRsetSource::Update;
    let batch = vec![
        Change::PutRRset {
            zone: zone.clone(),
            name: n("_acme-challenge.example.test."),
            rtype: RecordType::TXT,
            set: by_update,
        },
        Change::DeleteRRset { zone: zone.clone(), name: n("new.example.test."), rtype: RecordType::A },
        Change::PutMember {
            pool: n("www.example.test."),
            address: "192.0.2.30".parse().unwrap(),
            fields: MemberFields::default(),
        },
    ];
    let mut expected = loaded.clone();
    expected.apply_all(&batch, &zone);
    open(1).await.apply_all(&batch, &zone).await.unwrap_or_else(|e| panic!("{kind}: apply_all: {e}"));
    let after = open(1).await.load().await.unwrap();
    assert_eq!(after, expected, "{kind}: the batch after reopening");
    assert_eq!(after.serials[&zone], loaded.serials[&zone] + 1, "{kind}: one serial increment for the batch");

    journal(kind, &mut open).await;
}

/// A store's journals as a map, to compare whatever the order of the zones.
async fn journals(store: &mut dyn Store) -> BTreeMap<String, Vec<Vec<u8>>> {
    let stored = store.load_journals().await.unwrap();
    stored.into_iter().map(|(z, entries)| (z.to_ascii(), entries)).collect()
}

/// The IXFR journal: entries appended per zone, the oldest beyond `keep` dropped
/// by the same write, all back after reopening, the numbering going on from what
/// is stored (also when the journal was not read first), and none of it in the
/// API state or in an export.
async fn journal(kind: &str, open: &mut impl AsyncFnMut(usize) -> Box<dyn Store>) {
    let (a, b) = (n("example.test."), n("other.test."));
    let e = |i: u8| vec![i; 3 + usize::from(i)];
    let want = |list: &[(&Name, &[u8])]| -> BTreeMap<String, Vec<Vec<u8>>> {
        list.iter().map(|(z, is)| (z.to_ascii(), is.iter().map(|i| e(*i)).collect())).collect()
    };
    let mut store = open(1).await;
    let state = store.load().await.unwrap();
    assert!(journals(&mut *store).await.is_empty(), "{kind}: no journal yet");
    for i in 1..=3 {
        store.journal(&a, e(i), usize::from(i)).await.unwrap_or_else(|err| panic!("{kind}: journal: {err}"));
    }
    store.journal(&b, e(10), 1).await.unwrap();
    store.journal(&a, e(4), 3).await.unwrap();
    let mut store = open(1).await;
    assert_eq!(journals(&mut *store).await, want(&[(&a, &[2, 3, 4]), (&b, &[10])]), "{kind}: kept 3, reopened");
    store.journal(&a, e(5), 4).await.unwrap();
    // Reopened and written without reading the journal first.
    open(1).await.journal(&a, e(6), 2).await.unwrap();
    let mut store = open(1).await;
    assert_eq!(journals(&mut *store).await, want(&[(&a, &[5, 6]), (&b, &[10])]), "{kind}: numbering went on");
    // A journal that restarts (a gap) keeps its one new entry.
    store.journal(&a, e(7), 1).await.unwrap();
    assert_eq!(journals(&mut *open(1).await).await, want(&[(&a, &[7]), (&b, &[10])]), "{kind}: restarted");
    let after = open(1).await.load().await.unwrap();
    assert_eq!(after, state, "{kind}: the journal is not API state");
    assert_eq!(transfer::document(after), transfer::document(state), "{kind}: nor exported");
}

#[tokio::test(flavor = "current_thread")]
async fn sqlite_store_conforms() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    conformance("sqlite", async |i| -> Box<dyn Store> {
        let store: Box<dyn Store> = Box::new(SqliteStore::open(dirs[i].path()).unwrap());
        store
    })
    .await;
}

#[test]
fn etcd_store_conforms() {
    // etcd is started (and stopped) outside the runtime: the harness waits for
    // it with a blocking client.
    let Some(etcd) = Etcd::start(1) else { return };
    let settings = |prefix: &str| EtcdSettings {
        endpoints: etcd.urls(),
        prefix: prefix.into(),
        health: ClusterHealth::Local,
        node: "conformance".into(),
        user: None,
        ca_pem: None,
        identity_pem: None,
        timeout: Duration::from_secs(5),
        probe_share: None,
    };
    let prefixes = [settings("/a/"), settings("/b/")];
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(conformance("etcd", async |i| -> Box<dyn Store> {
        let store: Box<dyn Store> = Box::new(EtcdStore::open_reachable(&prefixes[i]).await.unwrap());
        store
    }));
    // Each node has its own journal; a full load (what the watch and every
    // node read) leaves all journals out.
    rt.block_on(async {
        let elsewhere = EtcdSettings { node: "elsewhere".into(), ..settings("/b/") };
        let mut other = EtcdStore::open_reachable(&elsewhere).await.unwrap();
        assert!(other.load_journals().await.unwrap().is_empty(), "another node's journal");
        let mine = EtcdStore::open_reachable(&prefixes[1]).await.unwrap().load_journals().await.unwrap();
        assert!(!mine.is_empty());
        let mut client = etcd::connect(&prefixes[1]).await.unwrap();
        let (entries, _) = etcd::load_all(&mut client, "/b/").await.unwrap();
        assert!(entries.iter().any(|(k, _, _)| k.starts_with("serials/")), "{entries:?}");
        assert!(entries.iter().all(|(k, _, _)| !k.starts_with("journal/")), "a journal in the full load");
    });
}

/// A watch that catches up on several large journal entries (other nodes'
/// IXFR journals) gets them in fragments under the client's 4 MiB message
/// limit, skips them, and delivers the API change after them: it does not
/// break (and lose etcd) over them.
#[test]
fn a_watch_catching_up_on_large_journal_entries_does_not_break() {
    use lbdns::persist::Remote;
    let Some(etcd) = Etcd::start(1) else { return };
    let settings = EtcdSettings {
        endpoints: etcd.urls(),
        prefix: "/w/".into(),
        health: ClusterHealth::Local,
        node: "watcher".into(),
        user: None,
        ca_pem: None,
        identity_pem: None,
        timeout: Duration::from_secs(5),
        probe_share: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut client = etcd::connect(&settings).await.unwrap();
        let start = client.put("/w/txn/watcher", "0", None).await.unwrap().header().unwrap().revision();
        for i in 0..5 {
            client.put(format!("/w/journal/other/c.test./{i:020}"), vec![7u8; 1 << 20], None).await.unwrap();
        }
        client.put("/w/serials/c.test.", "3", None).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let watch = tokio::spawn(etcd::watch_loop(etcd::Connector::new(&settings), "/w/".into(), Some(start + 1), tx));
        let got = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("the watch reported nothing");
        match got {
            Some(Remote::Changes(c)) => {
                let keys: Vec<&str> = c.iter().map(|(k, _, _)| k.as_str()).collect();
                assert_eq!(keys, ["serials/c.test."]);
            }
            Some(Remote::Lost) => panic!("the watch broke on the journal entries"),
            other => panic!("{other:?}"),
        }
        watch.abort();
    });
}
