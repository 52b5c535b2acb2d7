//! Line numbers for problems: exact ones from serde's byte spans, and best-effort
//! ones for problems found after deserialization, where serde kept no span.

/// Line numbers of byte offsets, found by binary search over the line starts
/// (a config with 100,000 pools asks for 500,000 of them).
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line of `offset`.
    pub(super) fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Best-effort line of the first occurrence of `needle`, for problems found
/// after deserialization where serde kept no span.
pub(super) fn find_line(text: &str, needle: &str) -> usize {
    text.find(needle).map(|o| line_of(text, o)).unwrap_or(0)
}

/// The line of `key` inside the table that starts with `table` (e.g. `listen`
/// in `[admin]`), else the table's line.
pub(super) fn find_key_line(text: &str, table: &str, key: &str) -> usize {
    let Some(start) = text.find(table) else { return 0 };
    let body = &text[start + table.len()..];
    let end = body.find("\n[").unwrap_or(body.len());
    let at = body[..end]
        .match_indices(key)
        .find(|&(i, _)| {
            let line_start = body[..i].rfind('\n').map_or(0, |n| n + 1);
            body[line_start..i].trim().is_empty() && body[i + key.len()..].trim_start().starts_with('=')
        })
        .map(|(i, _)| start + table.len() + i);
    line_of(text, at.unwrap_or(start))
}
