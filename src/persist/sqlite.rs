//! The embedded store: API changes in `state_dir/lbdns.sqlite3`.
//!
//! SQLite runs in WAL mode with `synchronous = FULL`: a change is on disk when
//! `apply` returns, so an acknowledged write survives `kill -9` and power loss.
//! Each change is one transaction that also increments its zone's serial counter.
//! Row bodies are the values of the shared [`encoding`](super::encoding).
//!
//! SQLite calls block (a commit waits for the disk), and they run on the
//! caller's thread: the server's writer has a thread of its own
//! (`lbdns-writer`) with nothing else to do while its change
//! commits, so handing each call to yet another thread (as this store did) only
//! added two thread wake-ups to every write. Other callers (start-up, `lbdns
//! import`/`export`, tests) may block too.

use std::path::Path;

use hickory_proto::rr::{Name, RecordType};
use rusqlite::{Connection, params};

use super::encoding::{decode_pool, decode_rrset, pool_value, rrset_value};
use super::{Store, StoreError, StoredJournals};
use crate::config::parse_fqdn;
use crate::health::push::{decode_override, encode_override};
use crate::state::overlay::{Change, Overlay, decode_member, encode_member};

/// The embedded store's file under `state_dir`, refused when it exists but is
/// empty (SQLite would take it for a new database and start with no API state).
pub fn check_file(state_dir: &Path) -> Result<std::path::PathBuf, StoreError> {
    let file = state_dir.join("lbdns.sqlite3");
    match std::fs::metadata(&file) {
        Ok(m) if m.is_file() && m.len() == 0 => Err(StoreError::Empty { path: file.display().to_string() }),
        _ => Ok(file),
    }
}

/// The embedded store: `state_dir/lbdns.sqlite3`, its calls run on the caller's
/// thread (see the module docs).
pub struct SqliteStore {
    db: Db,
}

/// The database connection.
struct Db {
    conn: Connection,
    path: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pools   (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (pool TEXT NOT NULL, address TEXT NOT NULL, body TEXT,
                                    PRIMARY KEY (pool, address));
CREATE TABLE IF NOT EXISTS rrsets  (zone TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, body TEXT,
                                    PRIMARY KEY (zone, name, type));
CREATE TABLE IF NOT EXISTS serials (zone TEXT PRIMARY KEY, bumps INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, zone TEXT NOT NULL, entry BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS health  (pool TEXT NOT NULL, address TEXT NOT NULL, body TEXT NOT NULL,
                                    PRIMARY KEY (pool, address));
";

impl SqliteStore {
    /// Opens (or creates) the database. Errors come from here, before anything
    /// is served.
    pub fn open(state_dir: &Path) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore { db: Db::open(state_dir)? })
    }
}

/// Reads the stored changes once, without opening a store (for `lbdns check`).
pub fn read(state_dir: &Path) -> Result<Overlay, StoreError> {
    Db::open(state_dir)?.load()
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn load(&mut self) -> Result<Overlay, StoreError> {
        self.db.load()
    }

    async fn apply_all(&mut self, changes: &[Change], zone: &Name) -> Result<(), StoreError> {
        self.db.apply(changes, zone)
    }

    async fn import(&mut self, o: &Overlay) -> Result<usize, StoreError> {
        self.db.import(o)
    }

    async fn journal(&mut self, zone: &Name, entry: Vec<u8>, keep: usize) -> Result<(), StoreError> {
        self.db.journal(&zone.to_ascii(), &entry, keep)
    }

    async fn load_journals(&mut self) -> Result<StoredJournals, StoreError> {
        self.db.load_journals()
    }

    async fn bump(&mut self, zone: &Name) -> Result<(), StoreError> {
        let db = &self.db;
        let q = "INSERT INTO serials (zone, bumps) VALUES (?1, 1) ON CONFLICT(zone) DO UPDATE SET bumps = bumps + 1";
        db.conn.prepare_cached(q).and_then(|mut st| st.execute(params![zone.to_ascii()])).map(|_| ()).map_err(db.err())
    }
}

impl Db {
    fn open(state_dir: &Path) -> Result<Db, StoreError> {
        std::fs::create_dir_all(state_dir)
            .map_err(|source| StoreError::Dir { path: state_dir.display().to_string(), source })?;
        let file = check_file(state_dir)?;
        let path = file.display().to_string();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let conn = Connection::open(&file).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt { path, message: format!("cannot enable WAL (journal_mode={mode})") });
        }
        conn.execute_batch("PRAGMA synchronous=FULL;").map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Db { conn, path })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite { path: self.path.clone(), source }
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), message }
    }

    fn load(&mut self) -> Result<Overlay, StoreError> {
        let mut o = Overlay::default();
        let rows: Vec<(String, String)> = {
            let mut st = self.conn.prepare("SELECT name, body FROM pools").map_err(self.err())?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(self.err())?
                .collect::<Result<_, _>>()
                .map_err(self.err())?
        };
        for (name, body) in rows {
            let n = parse_fqdn(&name).map_err(|e| self.corrupt(format!("pool {name}: {e}")))?;
            let def = decode_pool(n.clone(), &body).map_err(|e| self.corrupt(format!("pool {name}: {e}")))?;
            o.pools.insert(n, def);
        }
        let rows: Vec<(String, String, Option<String>)> = {
            let mut st = self.conn.prepare("SELECT pool, address, body FROM members").map_err(self.err())?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(self.err())?
                .collect::<Result<_, _>>()
                .map_err(self.err())?
        };
        for (pool, addr, body) in rows {
            let p = parse_fqdn(&pool).map_err(|e| self.corrupt(format!("member of {pool}: {e}")))?;
            let a = addr.parse().map_err(|e| self.corrupt(format!("member {addr} of {pool}: {e}")))?;
            // NULL is a stored deletion; a body is the fields the override sets.
            let m = match body {
                Some(b) => decode_member(&b).map_err(|e| self.corrupt(format!("member {addr} of {pool}: {e}")))?,
                None => None,
            };
            o.members.insert((p, a), m);
        }
        let rows: Vec<(String, String, String, Option<String>)> = {
            let mut st = self.conn.prepare("SELECT zone, name, type, body FROM rrsets").map_err(self.err())?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(self.err())?
                .collect::<Result<_, _>>()
                .map_err(self.err())?
        };
        for (zone, name, rtype, body) in rows {
            let z = parse_fqdn(&zone).map_err(|e| self.corrupt(e.to_string()))?;
            let n = parse_fqdn(&name).map_err(|e| self.corrupt(e.to_string()))?;
            let t: RecordType = rtype.parse().map_err(|e| self.corrupt(format!("rrset type {rtype}: {e}")))?;
            // NULL is a stored deletion (as is a `null` body).
            let set = match body {
                Some(b) => decode_rrset(&b).map_err(|e| self.corrupt(format!("rrset {name}: {e}")))?,
                None => None,
            };
            o.rrsets.insert((z, n, t), set);
        }
        let rows: Vec<(String, i64)> = {
            let mut st = self.conn.prepare("SELECT zone, bumps FROM serials").map_err(self.err())?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(self.err())?
                .collect::<Result<_, _>>()
                .map_err(self.err())?
        };
        for (zone, bumps) in rows {
            let z = parse_fqdn(&zone).map_err(|e| self.corrupt(e.to_string()))?;
            o.serials.insert(z, bumps as u32);
        }
        self.load_health(&mut o)?;
        Ok(o)
    }

    fn load_health(&mut self, o: &mut Overlay) -> Result<(), StoreError> {
        let rows: Vec<(String, String, String)> = {
            let mut st = self.conn.prepare("SELECT pool, address, body FROM health").map_err(self.err())?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(self.err())?
                .collect::<Result<_, _>>()
                .map_err(self.err())?
        };
        for (pool, addr, body) in rows {
            let bad = |e: &dyn std::fmt::Display| self.corrupt(format!("health override of {addr} in {pool}: {e}"));
            let p = parse_fqdn(&pool).map_err(|e| bad(&e))?;
            let a = addr.parse().map_err(|e| bad(&e))?;
            o.health.insert((p, a), decode_override(&body).map_err(|e| bad(&e))?);
        }
        Ok(())
    }

    /// Runs `work` in one transaction, committed when it succeeds and rolled back
    /// when it or the commit fails. `BEGIN` and `COMMIT` are prepared once per
    /// connection (rusqlite's statement cache) like every statement of a write:
    /// `Connection::transaction` parses both anew for each transaction, about 3%
    /// of a sequential API write's CPU (bench/RESULTS.md, "writes17d").
    fn in_transaction(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<(), rusqlite::Error>,
    ) -> Result<(), StoreError> {
        let conn = &self.conn;
        conn.prepare_cached("BEGIN").and_then(|mut st| st.execute([])).map_err(self.err())?;
        let done = work(conn).and_then(|()| conn.prepare_cached("COMMIT").and_then(|mut st| st.execute([])));
        if let Err(e) = done {
            // A failed COMMIT (e.g. SQLITE_BUSY) leaves the transaction open:
            // nothing of it may stay for the next write to commit.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(self.err()(e));
        }
        Ok(())
    }

    fn apply(&mut self, changes: &[Change], zone: &Name) -> Result<(), StoreError> {
        self.in_transaction(|conn| {
            for change in changes {
                write_change(conn, change)?;
            }
            // Statements are prepared once per connection (rusqlite's cache), not per write.
            let bump =
                "INSERT INTO serials (zone, bumps) VALUES (?1, 1) ON CONFLICT(zone) DO UPDATE SET bumps = bumps + 1";
            conn.prepare_cached(bump)?.execute(params![zone.to_ascii()])?;
            Ok(())
        })
    }

    /// Appends one journal entry and drops the zone's entries before its newest `keep`.
    fn journal(&mut self, zone: &str, entry: &[u8], keep: usize) -> Result<(), StoreError> {
        self.in_transaction(|conn| {
            conn.prepare_cached("INSERT INTO journal (zone, entry) VALUES (?1, ?2)")?.execute(params![zone, entry])?;
            conn.prepare_cached(
                "DELETE FROM journal WHERE zone = ?1 AND seq NOT IN \
                 (SELECT seq FROM journal WHERE zone = ?1 ORDER BY seq DESC LIMIT ?2)",
            )?
            .execute(params![zone, keep as i64])?;
            Ok(())
        })
    }

    fn load_journals(&mut self) -> Result<StoredJournals, StoreError> {
        let rows: Vec<(String, Vec<u8>)> = {
            let mut st = self.conn.prepare("SELECT zone, entry FROM journal ORDER BY seq").map_err(self.err())?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(self.err())?
                .collect::<Result<_, _>>()
                .map_err(self.err())?
        };
        let mut out: Vec<(Name, Vec<Vec<u8>>)> = Vec::new();
        for (zone, entry) in rows {
            let z = parse_fqdn(&zone).map_err(|e| self.corrupt(format!("journal of {zone}: {e}")))?;
            match out.iter_mut().find(|(n, _)| *n == z) {
                Some((_, list)) => list.push(entry),
                None => out.push((z, vec![entry])),
            }
        }
        Ok(out)
    }

    fn import(&mut self, o: &Overlay) -> Result<usize, StoreError> {
        if self.load()? != Overlay::default() {
            return Err(StoreError::Conflict(format!(
                "{} already holds changes: import only into an empty store",
                self.path
            )));
        }
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        let mut n = 0;
        for def in o.pools.values() {
            let body = pool_value(def);
            tx.execute("INSERT INTO pools (name, body) VALUES (?1, ?2)", params![def.name.to_ascii(), body])
                .map_err(err)?;
            n += 1;
        }
        for ((pool, addr), m) in &o.members {
            let body = m.as_ref().map(|m| encode_member(&Some(m.clone())));
            tx.execute(
                "INSERT INTO members (pool, address, body) VALUES (?1, ?2, ?3)",
                params![pool.to_ascii(), addr.to_string(), body],
            )
            .map_err(err)?;
            n += 1;
        }
        for ((zone, name, rtype), set) in &o.rrsets {
            let body = set.as_ref().map(|s| rrset_value(Some(s)));
            tx.execute(
                "INSERT INTO rrsets (zone, name, type, body) VALUES (?1, ?2, ?3, ?4)",
                params![zone.to_ascii(), name.to_ascii(), rtype.to_string(), body],
            )
            .map_err(err)?;
            n += 1;
        }
        for (zone, bumps) in &o.serials {
            tx.execute("INSERT INTO serials (zone, bumps) VALUES (?1, ?2)", params![zone.to_ascii(), *bumps as i64])
                .map_err(err)?;
            n += 1;
        }
        for ((pool, addr), over) in &o.health {
            tx.execute(
                "INSERT INTO health (pool, address, body) VALUES (?1, ?2, ?3)",
                params![pool.to_ascii(), addr.to_string(), encode_override(over)],
            )
            .map_err(err)?;
            n += 1;
        }
        tx.commit().map_err(err)?;
        Ok(n)
    }
}

/// Writes one change (without its serial bump) in the transaction open on `tx`. A member or
/// RRset row with a NULL body is a stored deletion; a reverted override is a row
/// removed.
fn write_change(tx: &Connection, change: &Change) -> Result<(), rusqlite::Error> {
    let upsert_member = "INSERT INTO members (pool, address, body) VALUES (?1, ?2, ?3)
                         ON CONFLICT(pool, address) DO UPDATE SET body = ?3";
    let upsert_rrset = "INSERT INTO rrsets (zone, name, type, body) VALUES (?1, ?2, ?3, ?4)
                        ON CONFLICT(zone, name, type) DO UPDATE SET body = ?4";
    match change {
        Change::PutPool(def) => {
            let body = pool_value(def);
            tx.prepare_cached(
                "INSERT INTO pools (name, body) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET body = ?2",
            )?
            .execute(params![def.name.to_ascii(), body])?;
        }
        Change::DeletePool(name) => {
            tx.prepare_cached("DELETE FROM pools WHERE name = ?1")?.execute(params![name.to_ascii()])?;
        }
        Change::PutMember { pool, address, fields } => {
            let body = encode_member(&Some(fields.clone()));
            tx.prepare_cached(upsert_member)?.execute(params![pool.to_ascii(), address.to_string(), body])?;
        }
        Change::DeleteMember { pool, address } => {
            tx.prepare_cached(upsert_member)?.execute(params![pool.to_ascii(), address.to_string(), None::<String>])?;
        }
        Change::RevertMember { pool, address } => {
            tx.prepare_cached("DELETE FROM members WHERE pool = ?1 AND address = ?2")?
                .execute(params![pool.to_ascii(), address.to_string()])?;
        }
        Change::RevertPool { pool, .. } => {
            tx.prepare_cached("DELETE FROM members WHERE pool = ?1")?.execute(params![pool.to_ascii()])?;
            tx.prepare_cached("DELETE FROM pools WHERE name = ?1")?.execute(params![pool.to_ascii()])?;
        }
        Change::PutRRset { zone, name, rtype, set } => {
            let body = rrset_value(Some(set));
            tx.prepare_cached(upsert_rrset)?.execute(params![
                zone.to_ascii(),
                name.to_ascii(),
                rtype.to_string(),
                body
            ])?;
        }
        Change::DeleteRRset { zone, name, rtype } => {
            tx.prepare_cached(upsert_rrset)?.execute(params![
                zone.to_ascii(),
                name.to_ascii(),
                rtype.to_string(),
                None::<String>
            ])?;
        }
        Change::RevertRRset { zone, name, rtype } => {
            tx.prepare_cached("DELETE FROM rrsets WHERE zone = ?1 AND name = ?2 AND type = ?3")?.execute(params![
                zone.to_ascii(),
                name.to_ascii(),
                rtype.to_string()
            ])?;
        }
        Change::PutHealth { pool, address, over } => {
            tx.prepare_cached(
                "INSERT INTO health (pool, address, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(pool, address) DO UPDATE SET body = ?3",
            )?
            .execute(params![pool.to_ascii(), address.to_string(), encode_override(over)])?;
        }
        Change::ClearHealth { pool, address } => {
            tx.prepare_cached("DELETE FROM health WHERE pool = ?1 AND address = ?2")?
                .execute(params![pool.to_ascii(), address.to_string()])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemberConfig;
    use crate::persist::Store;
    use crate::state::overlay::{MemberFields, StoredRRset};
    use rusqlite::OptionalExtension;

    /// The serial bump stored for a zone, read straight from the file.
    fn stored_bumps(state_dir: &Path, zone: &str) -> Option<u32> {
        let conn = Connection::open(state_dir.join("lbdns.sqlite3")).ok()?;
        conn.query_row("SELECT bumps FROM serials WHERE zone = ?1", params![zone], |r| r.get::<_, i64>(0))
            .optional()
            .ok()
            .flatten()
            .map(|b| b as u32)
    }

    /// A transaction whose work fails (or whose commit fails) stores nothing and
    /// leaves no transaction open: the next write (a cached `BEGIN`) commits alone.
    #[test]
    fn a_failed_transaction_stores_nothing_and_the_next_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(dir.path()).unwrap();
        let failed = db.in_transaction(|conn| {
            conn.execute("INSERT INTO serials (zone, bumps) VALUES ('a.test.', 7)", [])?;
            conn.execute("INSERT INTO no_such_table VALUES (1)", []).map(|_| ())
        });
        assert!(matches!(failed, Err(StoreError::Sqlite { .. })), "{failed:?}");
        assert!(db.conn.is_autocommit(), "the failed transaction was left open");
        let zone = parse_fqdn("b.test.").unwrap();
        db.apply(&[], &zone).unwrap();
        db.apply(&[], &zone).unwrap();
        assert_eq!(stored_bumps(dir.path(), "a.test."), None);
        assert_eq!(stored_bumps(dir.path(), "b.test."), Some(2));
    }

    #[tokio::test]
    async fn changes_round_trip_through_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let zone = parse_fqdn("example.test.").unwrap();
        let pool = super::super::test_pool();
        let changes = vec![
            Change::PutPool(Box::new(pool)),
            Change::PutMember {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "2001:db8::9".parse().unwrap(),
                fields: MemberFields { weight: None, region: Some("eu".into()), enabled: Some(false), probe: None },
            },
            Change::PutMember {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "192.0.2.11".parse().unwrap(),
                fields: MemberFields::default(),
            },
            Change::DeleteMember {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "192.0.2.10".parse().unwrap(),
            },
            Change::PutMember {
                pool: parse_fqdn("old.example.test.").unwrap(),
                address: "192.0.2.20".parse().unwrap(),
                fields: MemberFields { enabled: Some(false), ..Default::default() },
            },
            Change::PutMember {
                pool: parse_fqdn("old.example.test.").unwrap(),
                address: "192.0.2.21".parse().unwrap(),
                fields: MemberFields { weight: Some(2), ..Default::default() },
            },
            Change::RevertPool {
                pool: parse_fqdn("old.example.test.").unwrap(),
                members: vec!["192.0.2.20".parse().unwrap(), "192.0.2.21".parse().unwrap()],
            },
            Change::PutMember {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "192.0.2.12".parse().unwrap(),
                fields: MemberFields { weight: Some(4), ..Default::default() },
            },
            Change::RevertMember {
                pool: parse_fqdn("www.example.test.").unwrap(),
                address: "192.0.2.12".parse().unwrap(),
            },
            Change::PutRRset {
                zone: zone.clone(),
                name: parse_fqdn("new.example.test.").unwrap(),
                rtype: RecordType::A,
                set: StoredRRset::api(60, vec!["192.0.2.7".into()]),
            },
            Change::DeleteRRset {
                zone: zone.clone(),
                name: parse_fqdn("static.example.test.").unwrap(),
                rtype: RecordType::AAAA,
            },
            Change::DeleteRRset {
                zone: zone.clone(),
                name: parse_fqdn("static.example.test.").unwrap(),
                rtype: RecordType::TXT,
            },
            Change::RevertRRset {
                zone: zone.clone(),
                name: parse_fqdn("static.example.test.").unwrap(),
                rtype: RecordType::TXT,
            },
        ];
        let mut expected = Overlay::default();
        {
            let mut s = SqliteStore::open(dir.path()).unwrap();
            for c in &changes {
                s.apply(c, &zone).await.unwrap();
                expected.apply(c, &zone);
            }
        }
        let mut s = SqliteStore::open(dir.path()).unwrap();
        let loaded = s.load().await.unwrap();
        assert_eq!(loaded, expected);
        assert_eq!(loaded.members.len(), 3, "reverted overrides are gone: {:?}", loaded.members);
        assert_eq!(loaded.rrsets.len(), 2);
        assert_eq!(expected.serials[&zone], 13);
        assert_eq!(stored_bumps(dir.path(), "example.test."), Some(13));
    }

    /// A database written by the previous version, whose member overrides hold
    /// the whole member: read as overrides of every field it had.
    #[tokio::test]
    async fn whole_member_overrides_of_the_previous_version_load_as_every_field_set() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("lbdns.sqlite3")).unwrap();
        let old = serde_json::to_string(&MemberConfig {
            address: "192.0.2.1".parse().unwrap(),
            weight: 3,
            region: None,
            enabled: false,
            probe: None,
        })
        .unwrap();
        conn.execute("INSERT INTO members VALUES ('www.example.test.', '192.0.2.1', ?1)", params![old]).unwrap();
        conn.execute("INSERT INTO members VALUES ('www.example.test.', '192.0.2.2', NULL)", []).unwrap();
        drop(conn);
        let o = SqliteStore::open(dir.path()).unwrap().load().await.unwrap();
        let www = parse_fqdn("www.example.test.").unwrap();
        let set = MemberFields { weight: Some(3), region: None, enabled: Some(false), probe: None };
        assert_eq!(o.members[&(www.clone(), "192.0.2.1".parse().unwrap())], Some(set));
        assert_eq!(o.members[&(www, "192.0.2.2".parse().unwrap())], None);
    }
}
