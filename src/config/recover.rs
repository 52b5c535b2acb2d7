//! Deserializing the whole file while going on past each bad key, so that one
//! run of `lbdns check` reports every independent mistake at its line.

use std::path::Path;

use super::lines::line_of;
use super::raw::ConfigFile;
use super::split::Cut;
use crate::problem::Problem;

/// At most this many keys are set aside by [`deserialize_all`] before it gives up.
const MAX_BAD_KEYS: usize = 200;
/// The most lines one bad value is taken to span when it is set aside.
const MAX_VALUE_LINES: usize = 200;

/// Deserializes `text`, going on past each bad key: its lines are blanked (so line
/// numbers hold) and deserialization is tried again, so one run reports every
/// independent mistake instead of one per run. Stops at a syntax error (nothing
/// after it can be trusted) and at a missing key (the table cannot be built).
/// `cut` is `text` cut for reading its pools in batches, when it could be.
pub(super) fn deserialize_all(path: &Path, text: &str, cut: Option<Cut>) -> (Option<ConfigFile>, Vec<Problem>) {
    let problem = |e: &toml::de::Error| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        Problem::new(path, line, e.message().trim().to_string())
    };
    // A valid config with many pools is read without a tree of the whole file.
    if let Some(raw) = cut.and_then(|c| c.read_pools(text)) {
        return (Some(raw), Vec::new());
    }
    let mut work = text.to_string();
    let mut problems = Vec::new();
    let mut blanked: Vec<String> = Vec::new();
    while problems.len() < MAX_BAD_KEYS {
        let e = match toml::from_str::<ConfigFile>(&work) {
            Ok(raw) => return (Some(raw), problems),
            Err(e) => e,
        };
        // Only now is the syntax checked apart (a valid config is parsed once).
        if problems.is_empty() && text.parse::<toml::Table>().is_err() {
            return (None, vec![problem(&e)]);
        }
        // A key this loop blanked is now missing: that was reported already.
        let missing = e.message().strip_prefix("missing field `").and_then(|m| m.split('`').next());
        if missing.is_some_and(|m| blanked.iter().any(|b| b == m)) {
            break;
        }
        problems.push(problem(&e));
        let Some(span) = e.span().filter(|_| missing.is_none()) else { break };
        match blank_entry(&mut work, span) {
            Some(key) => blanked.push(key),
            None => break,
        }
    }
    problems.sort_by_key(|p| p.line);
    (None, problems)
}

/// Blanks the lines of the entry at `span` (a whole table when `span` is in a
/// table header) and returns its key; `None` when nothing was left to blank.
fn blank_entry(text: &mut String, span: std::ops::Range<usize>) -> Option<String> {
    let start = text[..span.start.min(text.len())].rfind('\n').map_or(0, |n| n + 1);
    // Bytes, not str: `from` may fall inside a multi-byte character (a span's end - 1).
    let line_end =
        |from: usize| text.as_bytes()[from..].iter().position(|&b| b == b'\n').map_or(text.len(), |n| from + n);
    let first_line = text[start..line_end(start)].trim().to_string();
    let mut end = if first_line.starts_with('[') {
        // The table's own keys go with it, up to the next table header.
        let body = line_end(start);
        let mut at = body;
        while at < text.len() && !text[at + 1..].trim_start_matches([' ', '\t']).starts_with('[') {
            at = line_end(at + 1);
        }
        at
    } else {
        line_end(span.end.saturating_sub(1).max(start))
    };
    if text[start..end].trim().is_empty() {
        return None;
    }
    // A value over several lines (an array, a multi-line string) goes whole: take
    // lines until what is left parses again.
    let mut lines = 0;
    while blanked(text, start, end).parse::<toml::Table>().is_err() {
        if end >= text.len() || lines == MAX_VALUE_LINES {
            return None;
        }
        end = line_end(end + 1);
        lines += 1;
    }
    let key = first_line.trim_start_matches('[').split(['=', ']', '.']).next().unwrap_or("").trim().to_string();
    *text = blanked(text, start, end);
    Some(key.trim_matches('"').to_string())
}

/// `text` with `start..end` blanked: one space per byte, so every later offset,
/// and every line number, holds.
fn blanked(text: &str, start: usize, end: usize) -> String {
    let blank: String = text.as_bytes()[start..end].iter().map(|&b| if b == b'\n' { '\n' } else { ' ' }).collect();
    let mut out = text.to_string();
    out.replace_range(start..end, &blank);
    out
}
