//! The HTTP/1.1 exchange of an http(s) probe, written out by hand because it is
//! the measured hot path (issue 21: 1,000 checks/s): the request is serialised
//! once per check and written as it is, and the response is read into one buffer
//! the check keeps and parsed in place with `httparse`, so that a probe on a kept
//! connection allocates nothing and wakes only its own task (hyper's client
//! needed a connection task per member and a request and header map per probe).
//!
//! What a probe needs and no more: a status line and headers, then a body framed
//! by `Content-Length`, `Transfer-Encoding: chunked` or the end of the connection
//! (none for `HEAD`, 1xx, 204 and 304), of which the first [`MAX_BODY`] bytes are
//! kept. The connection may carry the next probe only when the whole response was
//! read, it is HTTP/1.1 and the backend did not say `Connection: close`.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest body kept (`expect_body`, `expect_body_regex`, `weight_from =
/// "json:…"`); a longer body is read this far and the connection is not reused.
pub const MAX_BODY: usize = 64 * 1024;

/// Largest response head (status line and headers), and most headers, accepted.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

/// Why an exchange failed, as the member's last error shows it.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("sending the request: {0}")]
    Write(std::io::Error),
    #[error("reading the response: {0}")]
    Read(std::io::Error),
    #[error("connection closed before the response ended")]
    Closed,
    #[error("invalid response: {0}")]
    Parse(httparse::Error),
    #[error("invalid response: {0}")]
    Framing(&'static str),
}

/// A response, its parts as offsets into the exchange's buffer.
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    /// Where the value of the header asked for is (`weight_from = "header:…"`).
    pub header: Option<(usize, usize)>,
    /// Where the (kept part of the) body is.
    pub body: (usize, usize),
    /// Whether the next request may go on the same connection.
    pub reusable: bool,
}

/// How the body of a response ends.
enum Framing {
    None,
    Length(usize),
    Chunked,
    Close,
}

/// Writes `request`, reads its response into `buf` (cleared first) and returns
/// where its parts are. `head_only`: the request was a HEAD (no body follows);
/// `header`: a header whose value to note (lower case).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    request: &[u8],
    buf: &mut Vec<u8>,
    head_only: bool,
    header: Option<&str>,
) -> Result<Response, WireError> {
    io.write_all(request).await.map_err(WireError::Write)?;
    io.flush().await.map_err(WireError::Write)?;
    buf.clear();
    read_response(io, buf, head_only, header).await
}

/// Reads a response into `buf`, after what is there already (the start of it,
/// read on the tick: `stamped.rs`), and returns where its parts are.
pub async fn read_response<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    head_only: bool,
    header: Option<&str>,
) -> Result<Response, WireError> {
    let (mut resp, head_len, framing) = loop {
        let parsed = parse_head(buf, header)?;
        if let Some((resp, len, framing)) = parsed {
            if (100..200).contains(&resp.status) && resp.status != 101 {
                buf.drain(..len); // an interim answer: the real one follows
                continue;
            }
            break (resp, len, framing);
        }
        if buf.len() >= MAX_HEAD {
            return Err(WireError::Framing("response head too large"));
        }
        fill(io, buf).await?.then_some(()).ok_or(WireError::Closed)?;
    };
    let framing = if head_only || resp.status == 204 || resp.status == 304 { Framing::None } else { framing };
    let (end, complete) = match framing {
        Framing::None => (head_len, buf.len() == head_len),
        Framing::Length(n) => read_length(io, buf, head_len, n).await?,
        Framing::Close => (read_to_close(io, buf, head_len).await?, false),
        Framing::Chunked => read_chunked(io, buf, head_len).await?,
    };
    resp.body = (head_len, end);
    resp.reusable &= complete;
    Ok(resp)
}

/// Reads more of the response onto the end of `buf`; `false` at its end.
async fn fill<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> Result<bool, WireError> {
    buf.reserve(4096);
    match io.read_buf(buf).await {
        Ok(n) => Ok(n > 0),
        // A TLS peer that closes without close_notify ends the response all the same.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(WireError::Read(e)),
    }
}

/// The status, the noted header and the framing, once the whole head is in `buf`.
fn parse_head(buf: &[u8], header: Option<&str>) -> Result<Option<(Response, usize, Framing)>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf).map_err(WireError::Parse)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let mut resp = Response { status: r.code.unwrap_or(0), reusable: r.version == Some(1), ..Response::default() };
    let (mut length, mut chunked) = (None, false);
    for h in r.headers.iter() {
        let value = h.value.trim_ascii();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value).ok().and_then(|v| v.parse::<usize>().ok());
            length = Some(n.ok_or(WireError::Framing("bad Content-Length"))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding is the one that frames the body (`gzip, chunked`).
            chunked = value.len() >= 7 && value[value.len() - 7..].eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") && contains_close(value) {
            resp.reusable = false;
        }
        if header.is_some_and(|want| h.name.eq_ignore_ascii_case(want)) && resp.header.is_none() {
            let start = value.as_ptr() as usize - buf.as_ptr() as usize;
            resp.header = Some((start, start + value.len()));
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::Close,
    };
    Ok(Some((resp, len, framing)))
}

fn contains_close(v: &[u8]) -> bool {
    v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// A body of `n` bytes after the head; returns its end and whether it was read whole.
async fn read_length<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    head: usize,
    n: usize,
) -> Result<(usize, bool), WireError> {
    let end = head + n.min(MAX_BODY);
    while buf.len() < end {
        fill(io, buf).await?.then_some(()).ok_or(WireError::Closed)?;
    }
    // More than the body (or a body cut short at MAX_BODY) leaves the connection
    // at an unknown place: not reused.
    Ok((end, n <= MAX_BODY && buf.len() == end))
}

/// A body that ends with the connection; returns its end.
async fn read_to_close<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>, head: usize) -> Result<usize, WireError> {
    while buf.len() < head + MAX_BODY && fill(io, buf).await? {}
    Ok(buf.len().min(head + MAX_BODY))
}

/// A chunked body, decoded in place: each chunk's data is moved down to follow
/// the previous one's. Returns its end and whether it was read whole.
async fn read_chunked<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    head: usize,
) -> Result<(usize, bool), WireError> {
    let (mut out, mut pos) = (head, head);
    loop {
        let line = read_line(io, buf, &mut pos).await?;
        let size = chunk_size(&buf[line])?;
        if size == 0 {
            while !read_line(io, buf, &mut pos).await?.is_empty() {} // trailers
            return Ok((out, pos == buf.len()));
        }
        let mut left = size;
        while left > 0 {
            if pos == buf.len() {
                buf.truncate(out); // what lies between was moved down already
                pos = out;
                fill(io, buf).await?.then_some(()).ok_or(WireError::Closed)?;
            }
            let take = left.min(buf.len() - pos);
            let keep = take.min(head + MAX_BODY - out);
            buf.copy_within(pos..pos + keep, out);
            (out, pos, left) = (out + keep, pos + take, left - take);
        }
        if out == head + MAX_BODY {
            return Ok((out, false));
        }
        if !read_line(io, buf, &mut pos).await?.is_empty() {
            return Err(WireError::Framing("chunk not followed by CRLF"));
        }
    }
}

/// The line at `pos` (without its CRLF), reading more as needed; moves `pos` past it.
async fn read_line<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
    pos: &mut usize,
) -> Result<std::ops::Range<usize>, WireError> {
    loop {
        if let Some(i) = buf[*pos..].windows(2).position(|w| w == b"\r\n") {
            let line = *pos..*pos + i;
            *pos += i + 2;
            return Ok(line);
        }
        if buf.len() - *pos > 4096 {
            return Err(WireError::Framing("chunk line too long"));
        }
        fill(io, buf).await?.then_some(()).ok_or(WireError::Closed)?;
    }
}

fn chunk_size(line: &[u8]) -> Result<usize, WireError> {
    let hex = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    let text = std::str::from_utf8(hex).map_err(|_| WireError::Framing("bad chunk size"))?;
    usize::from_str_radix(text, 16).map_err(|_| WireError::Framing("bad chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The response to one request from a backend that sends `reply` (in
    /// pieces of `piece` bytes) and then closes.
    async fn answer(reply: &[u8], piece: usize, head_only: bool) -> (Result<Response, WireError>, Vec<u8>) {
        let (mut ours, mut theirs) = tokio::io::duplex(1 << 20);
        let reply = reply.to_vec();
        let backend = tokio::spawn(async move {
            let mut req = [0u8; 64];
            let _ = theirs.read(&mut req).await;
            for p in reply.chunks(piece) {
                theirs.write_all(p).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let mut buf = Vec::new();
        let r = exchange(&mut ours, b"GET / HTTP/1.1\r\n\r\n", &mut buf, head_only, Some("x-lb-weight")).await;
        backend.await.unwrap();
        (r, buf)
    }

    fn body<'b>(r: &Response, buf: &'b [u8]) -> &'b [u8] {
        &buf[r.body.0..r.body.1]
    }

    #[tokio::test]
    async fn length_chunked_and_close_framed_bodies_are_read_in_any_pieces() {
        for piece in [1, 3, 4096] {
            let (r, buf) =
                answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-LB-Weight: 7\r\n\r\nok", piece, false).await;
            let r = r.unwrap();
            assert_eq!((r.status, body(&r, &buf), r.reusable), (200, &b"ok"[..], true));
            assert_eq!(&buf[r.header.unwrap().0..r.header.unwrap().1], b"7");
            let chunked =
                b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n";
            let (r, buf) = answer(chunked, piece, false).await;
            let r = r.unwrap();
            assert_eq!((r.status, body(&r, &buf), r.reusable, r.header), (503, &b"abcde"[..], true, None));
            let (r, buf) = answer(b"HTTP/1.0 200 OK\r\n\r\nall of it", piece, false).await;
            let r = r.unwrap();
            assert_eq!((body(&r, &buf), r.reusable), (&b"all of it"[..], false));
        }
    }

    #[tokio::test]
    async fn what_ends_reuse_and_what_has_no_body() {
        let (r, _) =
            answer(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", 64, false).await;
        assert!(!r.unwrap().reusable);
        let (r, _) = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 64, true).await;
        let r = r.unwrap();
        assert_eq!((r.body.0 == r.body.1, r.reusable), (true, true));
        let (r, _) = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 64, true).await;
        assert!(!r.unwrap().reusable, "a body after a HEAD answer leaves the connection out of step");
        let (r, buf) = answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No\r\n\r\n", 5, false).await;
        let r = r.unwrap();
        assert_eq!((r.status, body(&r, &buf)), (204, &b""[..]));
        let long = [b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n".as_slice(), &[b'x'; 70000]].concat();
        let (r, buf) = answer(&long, 4096, false).await;
        let r = r.unwrap();
        assert_eq!((body(&r, &buf).len(), r.reusable), (MAX_BODY, false));
    }

    #[tokio::test]
    async fn broken_responses_are_errors_that_say_why() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "connection closed before the response ended"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "connection closed before the response ended"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "invalid response: bad Content-Length"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid response: bad chunk size"),
        ];
        for (reply, why) in cases {
            let (r, _) = answer(reply, 64, false).await;
            assert_eq!(r.unwrap_err().to_string(), why);
        }
        let (r, _) = answer(b"SMTP ready\r\n\r\n", 64, false).await;
        assert!(r.unwrap_err().to_string().starts_with("invalid response: "));
    }
}
