//! Reading a config of many pools in batches. The `toml` crate builds a tree of
//! the whole document before serde sees it: for 100,000 `[[pool]]` tables (a
//! 1,000,000-line file) that tree peaks at several hundred MB, all of it freed a
//! moment later. Here the runs of `[[pool]]` tables are cut out of the text and
//! read a batch of pools at a time (spans moved back to where each pool is in the
//! file), and the rest of the file is read with those runs blanked, so that every
//! offset and line still holds.
//!
//! It is only a fast path for a valid config: whenever the text is not plainly
//! cut into tables (a multi-line string, a quoted table name, a line starting
//! with `[` that is no table header) or any part does not deserialize, it gives
//! up and the whole file is read as before, which reports every problem.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::raw::{ConfigFile, PoolConfig, ZoneConfig};

/// Pools read at once: small enough that one batch's tree is a few MB.
const BATCH: usize = 1000;

/// `[[pool]]` tables only: what one batch of the file deserializes into.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolsOnly {
    #[serde(default)]
    pool: Vec<Spanned<PoolConfig>>,
}

/// What a table header line opens.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// `[[pool]]`: a new pool.
    Pool,
    /// `[pool.…]` or `[[pool.…]]`: a table inside the current pool.
    InPool,
    /// Any other table.
    Other,
}

/// The header on `line`, `None` when the line opens no table; `Err` when it
/// starts with `[` but is no plain header (e.g. a quoted name, or a line of a
/// multi-line array): the caller then leaves the file to the full reader.
fn header(line: &str) -> Result<Option<Header>, ()> {
    let t = line.trim();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let array = t.starts_with("[[");
    let (open, close) = if array { ("[[", "]]") } else { ("[", "]") };
    let inner = &t[open.len()..];
    let end = inner.find(close).ok_or(())?;
    let (name, after) = (inner[..end].trim(), inner[end + close.len()..].trim());
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '\t');
    if name.is_empty() || !name.chars().all(plain) || !(after.is_empty() || after.starts_with('#')) {
        return Err(());
    }
    let mut parts = name.split('.').map(str::trim);
    Ok(Some(match (parts.next(), parts.next(), array) {
        (Some("pool"), None, true) => Header::Pool,
        (Some("pool"), Some(_), _) => Header::InPool,
        _ => Header::Other,
    }))
}

/// The byte ranges of the runs of pool tables, each as the offsets of its
/// pools' `[[pool]]` lines and its end; `None` when the text is not plainly cut
/// into tables (see the module docs).
fn pool_runs(text: &str) -> Option<Vec<(Vec<usize>, usize)>> {
    if text.contains("\"\"\"") || text.contains("'''") {
        return None;
    }
    let mut runs: Vec<(Vec<usize>, usize)> = Vec::new();
    let mut open: Option<Vec<usize>> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        match header(line).ok()? {
            Some(Header::Pool) => open.get_or_insert_with(Vec::new).push(at),
            Some(Header::InPool) if open.is_some() => {}
            Some(Header::InPool) => return None,
            Some(Header::Other) => runs.extend(open.take().map(|starts| (starts, at))),
            None => {}
        }
        at += line.len();
    }
    runs.extend(open.map(|starts| (starts, text.len())));
    Some(runs)
}

/// `text` without `runs` (whole lines each), and where each kept piece is:
/// (offset in the returned text, offset in `text`), in order.
fn without(text: &str, runs: impl Iterator<Item = Range<usize>>) -> (String, Vec<(usize, usize)>) {
    let (mut rest, mut pieces, mut at) = (String::new(), vec![(0, 0)], 0);
    for r in runs {
        rest.push_str(&text[at..r.start]);
        pieces.push((rest.len(), r.end));
        at = r.end;
    }
    rest.push_str(&text[at..]);
    (rest, pieces)
}

/// `span` of the text without the runs, moved to where it is in the whole
/// text. An end is moved with the piece of its last byte, so that a table
/// ending where a run was cut out still ends before it.
fn moved(pieces: &[(usize, usize)], span: Range<usize>) -> Range<usize> {
    let at = |o: usize| {
        let i = pieces.partition_point(|&(cut, _)| cut <= o).saturating_sub(1);
        let (cut, whole) = pieces[i];
        whole + (o - cut)
    };
    let end = if span.end > span.start { at(span.end - 1) + 1 } else { at(span.end) };
    at(span.start)..end
}

fn respan<T>(pieces: &[(usize, usize)], t: Spanned<T>) -> Spanned<T> {
    let span = moved(pieces, t.span());
    Spanned::new(span, t.into_inner())
}

/// The spans of `raw` (read from the text without the pool runs) moved to
/// where they are in the whole text. Every `Spanned` outside the pools is
/// here: `batches_read_what_the_whole_file_holds` compares them all.
fn respan_all(raw: &mut ConfigFile, pieces: &[(usize, usize)]) {
    raw.redirect = raw.redirect.take().map(|r| respan(pieces, r));
    let zones = std::mem::take(&mut raw.zone).into_iter().map(|z| {
        let mut zone = respan(pieces, z);
        let update = std::mem::take(&mut zone.get_mut().update);
        zone.get_mut().update = update.into_iter().map(|g| respan(pieces, g)).collect();
        zone
    });
    raw.zone = zones.collect();
    raw.tsig = std::mem::take(&mut raw.tsig).into_iter().map(|t| respan(pieces, t)).collect();
}

/// The pools of `text[range]`, their spans (and their members') moved by the
/// range's start to where they are in the whole file.
fn read_batch(text: &str, range: Range<usize>) -> Option<Vec<Spanned<PoolConfig>>> {
    let shift = |r: Range<usize>| r.start + range.start..r.end + range.start;
    let batch: PoolsOnly = toml::from_str(&text[range.clone()]).ok()?;
    let pools = batch.pool.into_iter().map(|p| {
        let span = shift(p.span());
        let mut pool = p.into_inner();
        pool.member = std::mem::take(&mut pool.member)
            .into_iter()
            .map(|m| {
                let span = shift(m.span());
                Spanned::new(span, m.into_inner())
            })
            .collect();
        Spanned::new(span, pool)
    });
    Some(pools.collect())
}

/// A config's text cut for reading its pools in batches: everything but the
/// pools read (the zones are known), the batches of pools still to read.
pub(super) struct Cut {
    rest: ConfigFile,
    batches: Vec<Range<usize>>,
}

impl Cut {
    /// Reads everything in `text` but the runs of pool tables, and cuts those
    /// into batches; `None` when that cannot be done (see the module docs) or
    /// when the rest does not deserialize.
    pub(super) fn new(text: &str) -> Option<Cut> {
        let runs = pool_runs(text)?;
        if runs.is_empty() {
            return None;
        }
        // Cut out, not blanked: the toml lexer would go through every blank.
        let (rest, pieces) = without(text, runs.iter().map(|(starts, end)| starts[0]..*end));
        // `pool` defined elsewhere too (`pool = []`): the whole-file reader says why.
        if rest.parse::<toml::Table>().ok()?.contains_key("pool") {
            return None;
        }
        let mut rest: ConfigFile = toml::from_str(&rest).ok()?;
        respan_all(&mut rest, &pieces);
        let mut batches = Vec::new();
        for (starts, end) in &runs {
            for (i, chunk) in starts.chunks(BATCH).enumerate() {
                batches.push(chunk[0]..starts.get((i + 1) * BATCH).copied().unwrap_or(*end));
            }
        }
        Some(Cut { rest, batches })
    }

    /// The `[[zone]]` tables, spans in the whole text.
    pub(super) fn zones(&self) -> &[Spanned<ZoneConfig>] {
        &self.rest.zone
    }

    /// The cut with no pools to read: a reload of unchanged bytes keeps the
    /// pools it holds and reads only the rest (see `reuse.rs`).
    pub(super) fn without_batches(mut self) -> Cut {
        self.batches.clear();
        self
    }

    /// The whole config: the pools of `text` (the text it was cut from) read
    /// (none, after [`Cut::without_batches`]).
    pub(super) fn read_pools(self, text: &str) -> Option<ConfigFile> {
        if self.batches.is_empty() {
            return Some(self.rest);
        }
        let mut raw = self.rest;
        raw.pool = read_batches(text, &self.batches)?;
        Some(raw)
    }
}

/// `text` deserialized with its pools read a batch at a time; `None` when that
/// cannot be done (see the module docs) or when anything does not deserialize.
#[cfg(test)]
fn deserialize_in_batches(text: &str) -> Option<ConfigFile> {
    Cut::new(text)?.read_pools(text)
}

/// The pools of every batch, in order. Batches are independent, so each core
/// reads its share of them (start-up at 100,000 pools is mostly this reading).
fn read_batches(text: &str, batches: &[Range<usize>]) -> Option<Vec<Spanned<PoolConfig>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(batches.len()).max(1);
    let share = batches.len().div_ceil(threads);
    let read = |mine: &[Range<usize>]| -> Option<Vec<Spanned<PoolConfig>>> {
        let mut pools = Vec::new();
        for b in mine {
            pools.extend(read_batch(text, b.clone())?);
        }
        Some(pools)
    };
    if threads == 1 {
        return read(batches);
    }
    std::thread::scope(|s| {
        let shares: Vec<_> = batches.chunks(share).map(|mine| s.spawn(move || read(mine))).collect();
        let mut pools = Vec::new();
        for share in shares {
            pools.extend(share.join().ok()??);
        }
        Some(pools)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        assert_eq!(header("[[pool]]\n"), Ok(Some(Header::Pool)));
        assert_eq!(header("  [[ pool ]] # a comment\n"), Ok(Some(Header::Pool)));
        assert_eq!(header("[[pool.member]]\n"), Ok(Some(Header::InPool)));
        assert_eq!(header("[pool.health]\n"), Ok(Some(Header::InPool)));
        assert_eq!(header("[pool]\n"), Ok(Some(Header::Other)));
        assert_eq!(header("[[zone]]\n"), Ok(Some(Header::Other)));
        assert_eq!(header("[zone.dnssec]\n"), Ok(Some(Header::Other)));
        assert_eq!(header("name = \"[x]\"\n"), Ok(None));
        assert_eq!(header("[\"pool\"]\n"), Err(()));
        assert_eq!(header("[1, 2],\n"), Err(()));
    }

    /// `n` pools, every tenth with its own health table, every member a line.
    fn pools(n: usize, from: usize) -> String {
        let mut s = String::new();
        for p in from..from + n {
            s += &format!("[[pool]]\nname = \"p{p}.e.test.\"\n# a comment\n[[pool.member]]\naddress = \"192.0.2.1\"\n");
            s += "  [[ pool.member ]] # indented\n  address = \"192.0.2.2\"\n  weight = 2\n";
            if p % 10 == 0 {
                s += "[pool.health]\ncheck = \"tcp\"\nport = 80\nexpect_status = [\n  200,\n  204,\n]\n";
            }
        }
        s
    }

    /// Read in batches, across batch boundaries and around other tables, the
    /// file deserializes to what reading it whole does, spans (lines) included.
    #[test]
    fn batches_read_what_the_whole_file_holds() {
        // Every spanned table outside the pools, after a run of pools: their
        // spans are moved back over the runs cut out.
        let text = format!(
            "[dns]\nlisten = [\"127.0.0.1:53\"]\n{}[[zone]]\norigin = \"e.test.\"\nfile = \"e.zone\"\n\
             [[zone.update]]\nkey = \"k.\"\nnames = [\"e.test.\"]\ntypes = [\"A\"]\n{}\
             [regions]\nEU = [\n  \"DE\",\n]\n{}[[tsig]]\nname = \"k.\"\nsecret_file = \"k.key\"\n{}\
             [redirect]\n[redirect.hosts]\n{}",
            pools(3, 0),
            pools(2 * BATCH + 7, 3),
            pools(1, 5000),
            pools(2, 6000),
            pools(1, 7000)
        );
        let whole: ConfigFile = toml::from_str(&text).unwrap();
        let batched = deserialize_in_batches(&text).expect("read in batches");
        assert_eq!(batched.pool.len(), 2 * BATCH + 14);
        assert_eq!(format!("{batched:?}"), format!("{whole:?}"));
    }

    /// Text that is not plainly cut into tables, or that does not deserialize,
    /// is left to the whole-file reader (which reports the problems).
    #[test]
    fn unclear_or_bad_text_is_left_to_the_whole_file_reader() {
        let pool = "[[pool]]\nname = \"p.e.test.\"\n";
        for text in [
            format!("{pool}[pool.health]\npath = \"\"\"\n[[pool]]\n\"\"\"\n"),
            format!("[zone.x]\n{pool}"),
            format!("{pool}[zone.x]\n[[pool.member]]\naddress = \"192.0.2.1\"\n"),
            format!("{pool}[\"pool\".health]\n"),
            format!("{pool}nope = 1\n"),
            format!("pool = []\n{pool}"),
            "[dns]\nthreads = \"many\"\n".to_string(),
        ] {
            assert!(deserialize_in_batches(&text).is_none(), "{text}");
        }
    }
}
