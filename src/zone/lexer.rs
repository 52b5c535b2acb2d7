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
}

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
        }
    }
}

impl Lexer {
    fn flush(&mut self) -> Result<(), (usize, String)> {
        if !self.tok.is_empty() {
            self.cur_len += self.tok.len() + 1;
            let (line, blank) = (self.line, self.blank);
            self.cur
                .get_or_insert_with(|| Entry { line, blank_owner: blank, tokens: Vec::new() })
                .tokens
                .push(std::mem::take(&mut self.tok));
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
                let (line, blank) = (self.line, self.blank);
                self.cur.get_or_insert_with(|| Entry { line, blank_owner: blank, tokens: Vec::new() });
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
