//! Tables for people: aligned columns (comfy-table), colours only when stdout is
//! a terminal and `NO_COLOR` is not set, so piped output is plain text; and the
//! JSON for scripts. A member's state is one word: `drained` when an operator
//! took it out (its health in brackets), else its health, `up` also for a pool
//! without health checks (its members are answered).

use std::io::IsTerminal;

use comfy_table::{Attribute, Cell, Color, Table, presets};
use serde_json::{Value, json};

use super::ClientError;
use super::api::{Event, Member, Pool, Records, Zone};

/// How to print.
pub struct Output {
    pub json: bool,
    pub colour: bool,
}

impl Output {
    pub fn for_stdout(json: bool) -> Output {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Output { json, colour: !json && !no_color && std::io::stdout().is_terminal() }
    }

    /// `v` as JSON with `--json`, else what `table` renders.
    pub fn json_or(
        &self,
        v: &Value,
        table: impl FnOnce() -> Result<String, ClientError>,
    ) -> Result<String, ClientError> {
        if self.json { Ok(json(v)) } else { table() }
    }

    pub(super) fn table(&self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_style(presets::NOTHING).force_no_tty();
        if self.colour {
            t.enforce_styling();
        }
        t.style_text_only();
        t.set_header(header.iter().map(|h| Cell::new(h).add_attribute(Attribute::Bold)));
        for c in t.column_iter_mut() {
            c.set_padding((0, 2));
        }
        t
    }

    pub(super) fn finish(&self, t: &Table) -> String {
        format!("{}\n", t.trim_fmt())
    }
}

/// Pretty JSON with a final newline.
pub fn json(v: &Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()))
}

/// Members of a pool by state.
#[derive(Default)]
struct Tally {
    up: usize,
    down: usize,
    drained: usize,
    unknown: usize,
}

fn tally(p: &Pool) -> Tally {
    let mut t = Tally::default();
    for m in &p.members {
        match (m.enabled, m.health.as_str()) {
            (false, _) => t.drained += 1,
            (true, "up" | "none") => t.up += 1,
            (true, "down") => t.down += 1,
            (true, _) => t.unknown += 1,
        }
    }
    t
}

/// A member's state word and its colour.
fn state(m: &Member) -> (String, Color) {
    let health = if m.health == "none" { "up" } else { m.health.as_str() };
    let pushed = match (&m.health_override, &m.health_file) {
        (Some(o), _) => Some((o.state.as_str(), "pushed")),
        (None, Some(f)) => Some((f.state.as_str(), "health file")),
        (None, None) => None,
    };
    if let (true, Some((word, by))) = (m.enabled, pushed) {
        return (format!("{word} ({by})"), if word == "up" { Color::Green } else { Color::Red });
    }
    match (m.enabled, health) {
        (false, h) => (format!("drained ({h})"), Color::Yellow),
        (true, "up") => ("up".into(), Color::Green),
        (true, "down") => ("down".into(), Color::Red),
        (true, h) => (h.to_string(), Color::Magenta),
    }
}

/// A count, in its state's colour when it is not zero (so a 0 does not draw the eye).
fn count(n: usize, colour: Color) -> Cell {
    if n == 0 { Cell::new(0) } else { Cell::new(n).fg(colour) }
}

fn or_dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_string()
}

fn pool_row(p: &Pool) -> Vec<Cell> {
    let t = tally(p);
    let answers = if p.max_answers == 0 { "all".to_string() } else { p.max_answers.to_string() };
    vec![
        Cell::new(&p.name),
        Cell::new(&p.policy),
        Cell::new(p.ttl),
        Cell::new(answers),
        Cell::new(&p.health.check),
        count(t.up, Color::Green),
        count(t.down, Color::Red),
        count(t.drained, Color::Yellow),
        count(t.unknown, Color::Magenta),
        Cell::new(&p.source),
    ]
}

const POOL_HEADER: [&str; 10] =
    ["POOL", "POLICY", "TTL", "ANSWERS", "CHECK", "UP", "DOWN", "DRAINED", "UNKNOWN", "SOURCE"];

/// `lbdns pools`: one line per pool.
pub fn pools(out: &Output, pools: &[Pool]) -> String {
    let mut t = out.table(&POOL_HEADER);
    for p in pools {
        t.add_row(pool_row(p));
    }
    out.finish(&t)
}

/// `lbdns pools NAME`: the pool's line, then its members.
pub fn pool(out: &Output, p: &Pool) -> String {
    let mut t = out.table(&POOL_HEADER);
    t.add_row(pool_row(p));
    let fallback = if p.fallback.is_empty() { String::new() } else { format!(" ({})", p.fallback.join(", ")) };
    format!("{}all down: {}{fallback}\n\n{}", out.finish(&t), p.all_down, members(out, &p.members))
}

/// `lbdns members POOL`.
pub fn members(out: &Output, members: &[Member]) -> String {
    let mut t = out.table(&["ADDRESS", "STATE", "WEIGHT", "REGION", "SOURCE", "SINCE", "LAST ERROR"]);
    for m in members {
        let (word, colour) = state(m);
        t.add_row(vec![
            Cell::new(&m.address),
            Cell::new(word).fg(colour),
            Cell::new(m.weight),
            Cell::new(or_dash(m.region.as_deref())),
            Cell::new(&m.source),
            Cell::new(or_dash(m.last_change.as_deref())),
            Cell::new(why(m)),
        ]);
    }
    out.finish(&t)
}

/// The last column of a member: what pushed its state (reason, expiry), else
/// its last probe error.
fn why(m: &Member) -> String {
    let Some(p) = m.health_override.as_ref().or(m.health_file.as_ref()) else {
        return or_dash(m.last_error.as_deref());
    };
    let until = p.expires_at.as_deref().map(|t| format!(" until {t}")).unwrap_or_default();
    format!("{}{until}", p.reason.as_deref().unwrap_or("(no reason given)"))
}

/// A state word's colour, as in the members table.
fn state_colour(word: &str) -> Color {
    match word {
        "up" => Color::Green,
        "down" => Color::Red,
        "drained" => Color::Yellow,
        _ => Color::Magenta,
    }
}

/// `lbdns events`: newest first, as the server sends them.
pub fn events(out: &Output, events: &[Event]) -> String {
    let mut t = out.table(&["TIME", "POOL", "ADDRESS", "CHANGE", "REASON"]);
    for e in events {
        let change = format!("{} → {}", e.from, e.to);
        t.add_row(vec![
            Cell::new(&e.time),
            Cell::new(&e.pool),
            Cell::new(e.address.as_deref().unwrap_or("(pool)")),
            Cell::new(change).fg(state_colour(&e.to)),
            Cell::new(&e.reason),
        ]);
    }
    out.finish(&t)
}

/// After drain, undrain or weight: the member as it is now in effect.
pub fn changed(p: &Pool, address: std::net::IpAddr) -> String {
    let Some(m) = p.members.iter().find(|m| m.address.parse::<std::net::IpAddr>().is_ok_and(|a| a == address)) else {
        return format!("{}: {address} is no longer a member\n", p.name);
    };
    let (word, _) = state(m);
    format!("{} {}: {word}, weight {}\n", p.name, m.address, m.weight)
}

/// `lbdns records ZONE`: one line per record.
pub fn records(out: &Output, r: &Records) -> String {
    let mut t = out.table(&["NAME", "TTL", "TYPE", "SOURCE", "DATA"]);
    for set in &r.records {
        for data in &set.data {
            t.add_row(vec![
                Cell::new(&set.name),
                Cell::new(set.ttl),
                Cell::new(&set.rtype),
                Cell::new(&set.source),
                Cell::new(data),
            ]);
        }
    }
    let serial = r.serial.map_or_else(|| "-".to_string(), |s| s.to_string());
    let mut text = format!("zone {} serial {serial}\n\n{}", r.zone, out.finish(&t));
    for d in &r.deleted {
        text.push_str(&format!("deleted through the API: {} {}\n", d.name, d.rtype));
    }
    text
}

/// `lbdns status`.
pub fn status(out: &Output, url: &str, ready: bool, zones: &[Zone], pools: &[Pool]) -> String {
    let mut server = out.table(&["SERVER", "STATE"]);
    let state = if ready { Cell::new("ready").fg(Color::Green) } else { Cell::new("not ready").fg(Color::Red) };
    server.add_row(vec![Cell::new(url), state]);
    let mut z = out.table(&["ZONE", "SERIAL", "RRSETS", "LAST CHANGE", "BY"]);
    for zone in zones {
        let (time, by) = zone.last_change.as_ref().map_or(("-", "-"), |l| (l.time.as_str(), l.source.as_str()));
        let serial = zone.serial.map_or_else(|| "-".to_string(), |s| s.to_string());
        z.add_row(vec![
            Cell::new(&zone.origin),
            Cell::new(serial),
            Cell::new(zone.rrsets),
            Cell::new(time),
            Cell::new(by),
        ]);
    }
    format!("{}\n{}\n{}", out.finish(&server), out.finish(&z), self::pools(out, pools))
}

/// A pool in `lbdns status --json`: its members counted by state.
pub fn pool_summary_json(p: &Pool) -> Value {
    let t = tally(p);
    json!({"name": p.name, "policy": p.policy, "check": p.health.check, "members": p.members.len(),
           "up": t.up, "down": t.down, "drained": t.drained, "unknown": t.unknown})
}
