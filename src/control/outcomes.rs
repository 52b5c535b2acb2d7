//! What became of the last reload and of the last API writes, for the status
//! page (`/ui/api/state`): when, what, and whether it was put in effect or why not.
//!
//! The writer records every API write it answers (reads are not recorded);
//! `app::Control::reload` records each reload, including those refused before
//! they reach the writer (a config that does not parse). Both hold at most a
//! few items in memory ([`Outcomes::WRITES`] writes, the last reload); readers
//! take a copy under a short lock. Nothing is persisted: a restart starts empty.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::state::api::{ApiError, ApiRequest, Reply};

/// One reload or write: `error` is `null` when it was put in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// RFC 3339, UTC, seconds.
    pub time: String,
    /// `reload`, or the write as method, path and a shortened body.
    pub what: String,
    pub ok: bool,
    pub error: Option<String>,
}

impl Outcome {
    fn now(what: String, error: Option<String>) -> Outcome {
        Outcome { time: super::events::rfc3339_now(), what, ok: error.is_none(), error }
    }
}

#[derive(Default)]
struct Recorded {
    reload: Option<Outcome>,
    writes: VecDeque<Outcome>,
    health_files: Vec<String>,
}

/// The shared record: the writer and the reload push, the status page reads.
#[derive(Clone)]
pub struct Outcomes {
    inner: Arc<Mutex<Recorded>>,
    started: SystemTime,
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes { inner: Arc::default(), started: SystemTime::now() }
    }
}

/// What the page shows: the server's start, the last reload, the last writes.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomesView {
    pub started: String,
    pub reload: Option<Outcome>,
    /// Newest first.
    pub writes: Vec<Outcome>,
    /// The health files' lines that are ignored, `FILE:LINE: problem`.
    pub health_files: Vec<String>,
}

impl Outcomes {
    /// How many writes are kept.
    pub const WRITES: usize = 20;

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A panic while holding the lock cannot leave the record half-changed.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a reload: `error` holds every problem, one per line, when it
    /// was refused.
    pub fn reload(&self, error: Option<String>) {
        self.lock().reload = Some(Outcome::now("reload".into(), error));
    }

    /// Records an API write (`what` from [`describe`]) and its answer.
    pub fn write(&self, what: String, result: &Result<Reply, ApiError>) {
        let outcome = Outcome::now(what, result.as_ref().err().map(ApiError::to_string));
        let mut r = self.lock();
        while r.writes.len() >= Self::WRITES {
            r.writes.pop_front();
        }
        r.writes.push_back(outcome);
    }

    /// Records the health files' ignored lines (all of them, replacing the last).
    pub fn health_files(&self, problems: Vec<String>) {
        self.lock().health_files = problems;
    }

    pub fn view(&self) -> OutcomesView {
        let r = self.lock();
        OutcomesView {
            started: humantime::format_rfc3339_seconds(self.started).to_string(),
            reload: r.reload.clone(),
            writes: r.writes.iter().rev().cloned().collect(),
            health_files: r.health_files.clone(),
        }
    }
}

/// Bodies are shown up to this many characters.
const BODY_SHOWN: usize = 80;

/// Whether a request may change a member's state (reads and explain are not diffed).
pub(super) fn is_write(req: &ApiRequest) -> bool {
    describe(req).is_some()
}

/// A write as the operator sent it: method, `/v1` path and body (compact JSON,
/// shortened); `None` for a read.
pub fn describe(req: &ApiRequest) -> Option<String> {
    use ApiRequest as R;
    let (method, path, body) = match req {
        R::PutPool(p, b) => ("PUT", format!("/v1/pools/{p}"), Some(b)),
        R::DeletePool(p) => ("DELETE", format!("/v1/pools/{p}"), None),
        R::DeletePoolOverride(p) => ("DELETE", format!("/v1/pools/{p}/override"), None),
        R::PutMember(p, a, b) => ("PUT", format!("/v1/pools/{p}/members/{a}"), Some(b)),
        R::DeleteMember(p, a) => ("DELETE", format!("/v1/pools/{p}/members/{a}"), None),
        R::DeleteMemberOverride(p, a) => ("DELETE", format!("/v1/pools/{p}/members/{a}/override"), None),
        R::PutMemberHealth(p, a, b, _) => ("PUT", format!("/v1/pools/{p}/members/{a}/health"), Some(b)),
        R::PutRRset(z, n, t, b) => ("PUT", format!("/v1/zones/{z}/records/{n}/{t}"), Some(b)),
        R::DeleteRRset(z, n, t) => ("DELETE", format!("/v1/zones/{z}/records/{n}/{t}"), None),
        R::DeleteRRsetOverride(z, n, t) => ("DELETE", format!("/v1/zones/{z}/records/{n}/{t}/override"), None),
        R::ListPools | R::GetPool(_) | R::ListZones | R::GetRecords(_) | R::Explain(_) => return None,
    };
    Some(match body {
        Some(b) => format!("{method} {path} {}", shortened(b)),
        None => format!("{method} {path}"),
    })
}

/// A body as compact JSON (as sent when it does not parse), at most
/// [`BODY_SHOWN`] characters.
fn shortened(body: &[u8]) -> String {
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    match text.char_indices().nth(BODY_SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_bounded_newest_first_and_reads_are_not_writes() {
        let o = Outcomes::default();
        for i in 0..Outcomes::WRITES + 3 {
            let body = format!("{{\"weight\": {i}}}").into_bytes().into();
            let what = describe(&ApiRequest::PutMember("p.".into(), "192.0.2.1".into(), body)).unwrap();
            o.write(what, &Ok(Reply::NoContent));
        }
        let v = o.view();
        assert_eq!(v.writes.len(), Outcomes::WRITES);
        let last = Outcomes::WRITES + 2;
        assert_eq!(v.writes[0].what, format!("PUT /v1/pools/p./members/192.0.2.1 {{\"weight\":{last}}}"));
        assert!(v.writes[0].ok && v.writes[0].error.is_none());
        assert_eq!(describe(&ApiRequest::ListPools), None);
        assert!(v.reload.is_none());
    }

    #[test]
    fn a_failed_write_keeps_its_error_and_long_bodies_are_cut() {
        let o = Outcomes::default();
        let body = format!("{{\"data\": [\"{}\"]}}", "x".repeat(200)).into_bytes().into();
        let what = describe(&ApiRequest::PutRRset("z.".into(), "a".into(), "TXT".into(), body)).unwrap();
        o.write(what, &Err(ApiError::NotFound("no zone z.".into())));
        let w = &o.view().writes[0];
        assert!(w.what.ends_with('…') && w.what.chars().count() < 140, "{}", w.what);
        assert_eq!((w.ok, w.error.as_deref()), (false, Some("no zone z.")));
        o.reload(Some("lbdns.toml:3: bad".into()));
        assert_eq!(o.view().reload.unwrap().error.as_deref(), Some("lbdns.toml:3: bad"));
    }
}
