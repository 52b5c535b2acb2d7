//! The entry structure of zone text: tokens, parentheses joining lines, quoted
//! strings, escapes and comments, a line at a time, each entry with its line.

use super::MAX_LINE;

/// One logical entry: the tokens of a line, or of several lines joined by parentheses.
pub(super) struct Entry {
    pub line: usize,
    pub blank_owner: bool,
    /// Tokens as written (quotes and escapes kept, for hickory's RDATA parser).
    pub tokens: Vec<String>,
}

/// Splits zone text into entries, a line at a time; errors name the line.
pub(super) struct Lexer {
    /// The line being read (1-based).
    pub line: usize,
    /// Entries completed so far, for the loader to take.
    pub done: Vec<Entry>,
    cur: Option<Entry>,
    /// Octets in `cur`'s tokens, bounded by `MAX_LINE`.
    cur_len: usize,
    tok: String,
    depth: usize,
    paren_line: usize,
    /// The line where the open quoted string started.
    quote: Option<usize>,
    escaped: bool,
    comment: bool,
    at_line_start: bool,
    blank: bool,
    /// Token strings and lists of entries already handled, cleared for reuse
    /// ([`Lexer::recycle`]): a zone of 1,000,000 records would otherwise
    /// allocate and free each of its 5,000,000 tokens, and grow each by pushes.
    spare_tokens: Vec<String>,
    spare_lists: Vec<Vec<String>>,
}

/// Most spare token strings (and lists) kept, and the longest kept: enough for
/// the common entries, so a long entry's many or long tokens are not held.
const SPARE: usize = 64;
const SPARE_LEN: usize = 1024;

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            line: 1,
            done: Vec::new(),
            cur: None,
            cur_len: 0,
            tok: String::new(),
            depth: 0,
            paren_line: 0,
            quote: None,
            escaped: false,
            comment: false,
            at_line_start: true,
            blank: false,
            spare_tokens: Vec::new(),
            spare_lists: Vec::new(),
        }
    }
}

impl Lexer {
    /// Takes back the tokens of `entries` (handled) for the entries to come;
    /// `entries`, emptied, is the next [`Lexer::done`].
    pub fn recycle(&mut self, mut entries: Vec<Entry>) {
        for e in entries.drain(..) {
            let mut tokens = e.tokens;
            for mut t in tokens.drain(..).filter(|t| t.capacity() <= SPARE_LEN) {
                if self.spare_tokens.len() < SPARE {
                    t.clear();
                    self.spare_tokens.push(t);
                }
            }
            if self.spare_lists.len() < SPARE && tokens.capacity() <= SPARE_LEN {
                self.spare_lists.push(tokens);
            }
        }
        if self.done.is_empty() {
            self.done = entries;
        }
    }

    /// The entry being read, opened at the current line if there is none.
    fn current(&mut self) -> &mut Entry {
        let (line, blank) = (self.line, self.blank);
        let spare = &mut self.spare_lists;
        self.cur.get_or_insert_with(|| Entry { line, blank_owner: blank, tokens: spare.pop().unwrap_or_default() })
    }

    fn flush(&mut self) -> Result<(), (usize, String)> {
        if !self.tok.is_empty() {
            self.cur_len += self.tok.len() + 1;
            let next = self.spare_tokens.pop().unwrap_or_default();
            let tok = std::mem::replace(&mut self.tok, next);
            self.current().tokens.push(tok);
        }
        if self.cur_len > MAX_LINE {
            let line = self.cur.as_ref().map_or(self.line, |e| e.line);
            return Err((line, format!("entry is longer than {} KiB", MAX_LINE / 1024)));
        }
        Ok(())
    }

    /// Lexes one line (with its newline, unless it is the last).
    pub fn feed(&mut self, text: &str) -> Result<(), (usize, String)> {
        for c in text.chars() {
            if self.at_line_start && self.depth == 0 && self.quote.is_none() {
                self.blank = c == ' ' || c == '\t';
            }
            self.at_line_start = false;
            if self.escaped {
                self.escaped = false;
                self.tok.push(c);
                if c == '\n' {
                    self.line += 1;
                }
                continue;
            }
            if let Some(start) = self.quote {
                match c {
                    '\\' => self.escaped = true,
                    '"' => self.quote = None,
                    '\n' => return Err((start, "unterminated quoted string".into())),
                    _ => {}
                }
                self.tok.push(c);
                continue;
            }
            if self.comment && c != '\n' {
                continue;
            }
            self.comment = false;
            self.char(c)?;
        }
        Ok(())
    }

    /// One character outside quoted strings and comments.
    fn char(&mut self, c: char) -> Result<(), (usize, String)> {
        match c {
            '\n' => {
                self.flush()?;
                self.line += 1;
                self.at_line_start = true;
                if self.depth == 0 {
                    if let Some(e) = self.cur.take() {
                        self.done.push(e);
                    }
                    self.cur_len = 0;
                }
            }
            ' ' | '\t' | '\r' => self.flush()?,
            ';' => {
                self.flush()?;
                self.comment = true;
            }
            '(' => {
                self.flush()?;
                if self.depth == 0 {
                    self.paren_line = self.line;
                }
                self.depth += 1;
                self.current();
            }
            ')' => {
                self.flush()?;
                if self.depth == 0 {
                    return Err((self.line, "unbalanced ')'".into()));
                }
                self.depth -= 1;
            }
            '"' => {
                self.tok.push('"');
                self.quote = Some(self.line);
            }
            '\\' => {
                self.tok.push('\\');
                self.escaped = true;
            }
            _ => self.tok.push(c),
        }
        Ok(())
    }

    /// The last entry, at the end of the input.
    pub fn finish(mut self) -> Result<Option<Entry>, (usize, String)> {
        if let Some(start) = self.quote {
            return Err((start, "unterminated quoted string".into()));
        }
        self.flush()?;
        if self.depth > 0 {
            return Err((self.paren_line, "unbalanced '(' (no closing parenthesis)".into()));
        }
        Ok(self.cur.take())
    }
}
