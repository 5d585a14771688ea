//! The HTTP/1.1 opening handshake (RFC 6455 section 4, RFC 9112).
//!
//! Requests and responses are parsed incrementally with hard limits on line
//! length, header count and body size, checked as bytes arrive: a client
//! sending an endless request line is refused once it passes the limit, not
//! when it stops. Bytes after the head (the first frames, sent early by an
//! eager peer) are kept for the connection.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::error::HttpError;

/// GUID appended to the key before hashing (RFC 6455 section 1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    BASE64.encode(h.finalize())
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64-encoded.
pub fn generate_key() -> String {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).expect("operating system random source failed");
    BASE64.encode(raw)
}

/// True when `key` is base64 for exactly 16 bytes (section 4.2.1, item 5).
pub fn is_valid_key(key: &str) -> bool {
    key.len() == 24 && matches!(BASE64.decode(key), Ok(raw) if raw.len() == 16)
}

/// Hard limits of the parser; defaults are websockets' (8 KiB lines, 128
/// headers, 1 MiB bodies).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line, excluding CRLF.
    pub max_line: usize,
    /// Most header lines.
    pub max_headers: usize,
    /// Largest response body.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 8192,
            max_headers: 128,
            max_body: 1 << 20,
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method token, for example `GET`.
    pub method: String,
    /// Request target, with its query string.
    pub path: String,
    /// Protocol version, for example `HTTP/1.1`.
    pub protocol: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Protocol version.
    pub protocol: String,
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// Body (empty for 101).
    pub body: Vec<u8>,
}

/// Which kind of message a [`Parser`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request, read by servers.
    Request,
    /// A response, read by clients.
    Response,
}

/// A finished message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// See [`Request`].
    Request(Request),
    /// See [`Response`].
    Response(Response),
}

#[derive(Debug)]
enum Body {
    Exact(usize),
    UntilEof,
}

/// Incremental parser of one HTTP/1.1 request or response head (and the body
/// of a response).
#[derive(Debug)]
pub struct Parser {
    kind: Kind,
    limits: Limits,
    buf: Vec<u8>,
    /// Start of the line being read.
    line_start: usize,
    /// Ranges of the complete lines read so far, CRLF excluded.
    lines: Vec<(usize, usize)>,
    /// Response parsed, waiting for its body.
    pending: Option<(Response, Body, usize)>,
    done: bool,
}

impl Parser {
    /// A parser for a request or a response.
    pub fn new(kind: Kind, limits: Limits) -> Self {
        Parser {
            kind,
            limits,
            buf: Vec::new(),
            line_start: 0,
            lines: Vec::new(),
            pending: None,
            done: false,
        }
    }

    /// Feeds bytes; returns the message once it is complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Message>, HttpError> {
        if self.done {
            self.buf.extend_from_slice(data);
            return Ok(None);
        }
        let scan_from = self.buf.len();
        self.buf.extend_from_slice(data);
        if self.pending.is_some() {
            return self.read_body(false);
        }
        let mut i = scan_from.max(self.line_start);
        while let Some(off) = memchr(b'\n', &self.buf[i..]) {
            let nl = i + off;
            if nl == self.line_start || self.buf[nl - 1] != b'\r' {
                return Err(HttpError::InvalidLine("line without CRLF".into()));
            }
            let end = nl - 1;
            // Lengths count the CRLF, as websockets counts them.
            self.check_line_len(nl + 1 - self.line_start)?;
            let start = self.line_start;
            self.line_start = nl + 1;
            i = nl + 1;
            if end == start {
                if self.lines.is_empty() {
                    return Err(HttpError::InvalidLine("empty start line".into()));
                }
                return self.finish_head();
            }
            self.lines.push((start, end));
            if self.lines.len() == 1 {
                // Refused as soon as it is complete, not when the headers
                // end: a peer that doesn't speak HTTP may never send them.
                self.check_start_line()?;
            }
            if self.lines.len() > self.limits.max_headers + 1 {
                return Err(HttpError::TooManyHeaders {
                    limit: self.limits.max_headers,
                });
            }
        }
        // The line in progress may already be over the limit.
        self.check_line_len(self.buf.len() - self.line_start)?;
        if self.lines.is_empty() {
            self.check_start_prefix()?;
        }
        Ok(None)
    }

    /// Records the peer's EOF: completes a response read until EOF, or fails.
    pub fn feed_eof(&mut self) -> Result<Option<Message>, HttpError> {
        if self.done {
            return Ok(None);
        }
        if let Some((_, Body::UntilEof, _)) = &self.pending {
            return self.read_body(true);
        }
        // The part being read, in websockets' words.
        Err(HttpError::Eof(match self.kind {
            _ if self.pending.is_some() => "HTTP response body",
            Kind::Request if self.lines.is_empty() => "HTTP request line",
            Kind::Response if self.lines.is_empty() => "HTTP status line",
            _ => "HTTP headers",
        }))
    }

    /// Bytes received after the message: the start of the frame stream.
    pub fn take_remaining(&mut self) -> Vec<u8> {
        let start = self.line_start.min(self.buf.len());
        let rest = self.buf.split_off(start);
        self.buf.clear();
        self.line_start = 0;
        rest
    }

    /// Checks the length of a line, its CRLF included, or of the part of
    /// it received so far.
    fn check_line_len(&self, read: usize) -> Result<(), HttpError> {
        if read <= self.limits.max_line {
            return Ok(());
        }
        let limit = self.limits.max_line;
        Err(match (self.lines.is_empty(), self.kind) {
            (true, Kind::Request) => HttpError::RequestLineTooLong { limit, read },
            (true, Kind::Response) => HttpError::StatusLineTooLong { limit, read },
            (false, _) => HttpError::HeaderLineTooLong { limit, read },
        })
    }

    /// Parses the start line just completed, for its errors only; the head
    /// is parsed again, whole, once complete.
    fn check_start_line(&self) -> Result<(), HttpError> {
        let line = self.line(0);
        match self.kind {
            Kind::Request => parse_request_line(line).map(|_| ()),
            Kind::Response => parse_status_line(line).map(|_| ()),
        }
    }

    /// Refuses a start line as soon as its first bytes show that it cannot
    /// be HTTP: a TLS ClientHello or other binary data sent to a plain port
    /// fails at once, rather than when a CRLF that may never come arrives or
    /// when the opening handshake times out.
    fn check_start_prefix(&self) -> Result<(), HttpError> {
        let partial = &self.buf[self.line_start..];
        let plausible = match self.kind {
            // RFC 9112 section 3: the method is a token, then a space.
            Kind::Request => {
                partial.first() != Some(&b' ') && partial.iter().take_while(|&&b| b != b' ').all(|&b| is_tchar(b))
            }
            // Section 4: the status line starts with the HTTP version.
            Kind::Response => {
                let n = partial.len().min(5);
                partial[..n] == b"HTTP/"[..n]
            }
        };
        if plausible {
            return Ok(());
        }
        let shown = latin1(&partial[..partial.len().min(64)]);
        Err(match self.kind {
            Kind::Request => HttpError::InvalidRequestLine(shown),
            Kind::Response => HttpError::InvalidStatusLine(shown),
        })
    }

    fn line(&self, i: usize) -> &[u8] {
        let (s, e) = self.lines[i];
        &self.buf[s..e]
    }

    fn finish_head(&mut self) -> Result<Option<Message>, HttpError> {
        let mut headers = Vec::with_capacity(self.lines.len() - 1);
        for i in 1..self.lines.len() {
            headers.push(parse_header(self.line(i))?);
        }
        let start = self.line(0).to_vec();
        match self.kind {
            Kind::Request => {
                let (method, path, protocol) = parse_request_line(&start)?;
                if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")) {
                    return Err(HttpError::TransferEncoding);
                }
                // Some clients send "Content-Length: 0"; anything else is a
                // body, which an upgrade request cannot have.
                for (_, v) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
                    match v.parse::<u64>() {
                        Ok(0) => {}
                        Ok(_) => return Err(HttpError::RequestBody),
                        Err(_) => return Err(HttpError::InvalidContentLength(v.clone())),
                    }
                }
                self.done = true;
                Ok(Some(Message::Request(Request {
                    method,
                    path,
                    protocol,
                    headers,
                })))
            }
            Kind::Response => {
                let (protocol, status, reason) = parse_status_line(&start)?;
                let response = Response {
                    protocol,
                    status,
                    reason,
                    headers,
                    body: Vec::new(),
                };
                // RFC 9112 section 6.3: no body for 1xx, 204 and 304.
                if (100..200).contains(&status) || status == 204 || status == 304 {
                    self.done = true;
                    return Ok(Some(Message::Response(response)));
                }
                if response
                    .headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
                {
                    return Err(HttpError::TransferEncoding);
                }
                let length = response
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"));
                let body = match length {
                    Some((_, v)) => {
                        let n: u64 = v.parse().map_err(|_| HttpError::InvalidContentLength(v.clone()))?;
                        if n > self.limits.max_body as u64 {
                            return Err(HttpError::BodyTooLarge {
                                limit: self.limits.max_body,
                            });
                        }
                        Body::Exact(n as usize)
                    }
                    None => Body::UntilEof,
                };
                self.pending = Some((response, body, self.line_start));
                self.read_body(false)
            }
        }
    }

    fn read_body(&mut self, eof: bool) -> Result<Option<Message>, HttpError> {
        let Some((_, body, start)) = &self.pending else {
            return Ok(None);
        };
        let have = self.buf.len() - start;
        let end = match body {
            Body::Exact(n) if have >= *n => start + n,
            Body::Exact(_) => return Ok(None),
            Body::UntilEof => {
                if have > self.limits.max_body {
                    return Err(HttpError::BodyTooLarge {
                        limit: self.limits.max_body,
                    });
                }
                if !eof {
                    return Ok(None);
                }
                self.buf.len()
            }
        };
        let (mut response, _, start) = self.pending.take().expect("checked above");
        response.body = self.buf[start..end].to_vec();
        self.line_start = end;
        self.done = true;
        Ok(Some(Message::Response(response)))
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Byte classes of HTTP, one table lookup per byte: the checks run over
/// every byte of every request, and a chain of comparisons per byte was a
/// fifth of the parser's instructions.
const TCHAR: u8 = 1;
const FIELD_VALUE: u8 = 2;

static CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut class = 0;
        if c.is_ascii_alphanumeric()
            || matches!(c, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^'..=b'`' | b'|' | b'~')
        {
            class |= TCHAR;
        }
        // Field values: visible characters, spaces, tabs and obs-text; never
        // CR, LF or NUL (RFC 9110 section 5.5).
        if c == b'\t' || c == b' ' || (0x21 <= c && c <= 0x7E) || c >= 0x80 {
            class |= FIELD_VALUE;
        }
        table[b] = class;
        b += 1;
    }
    table
};

/// RFC 9110 section 5.6.2: token characters.
fn is_tchar(b: u8) -> bool {
    CLASSES[b as usize] & TCHAR != 0
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn is_field_value(s: &[u8]) -> bool {
    s.iter().all(|&b| CLASSES[b as usize] & FIELD_VALUE != 0)
}

fn is_version(s: &[u8]) -> bool {
    s.len() == 8 && s.starts_with(b"HTTP/") && s[5].is_ascii_digit() && s[6] == b'.' && s[7].is_ascii_digit()
}

fn latin1(s: &[u8]) -> String {
    if s.is_ascii() {
        // ASCII, as nearly every request is, is the same in UTF-8: one copy
        // instead of a char pushed per byte, and no second scan to validate.
        // SAFETY: every byte is below 0x80, so `s` is valid UTF-8.
        return unsafe { std::str::from_utf8_unchecked(s) }.to_owned();
    }
    s.iter().map(|&b| b as char).collect()
}

fn parse_request_line(line: &[u8]) -> Result<(String, String, String), HttpError> {
    let bad = || HttpError::InvalidRequestLine(latin1(line));
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !is_token(method) || target.is_empty() || !target.iter().all(|&b| (0x21..=0x7E).contains(&b)) {
        return Err(bad());
    }
    if !is_version(version) {
        return Err(bad());
    }
    Ok((latin1(method), latin1(target), latin1(version)))
}

fn parse_status_line(line: &[u8]) -> Result<(String, u16, String), HttpError> {
    let bad = || HttpError::InvalidStatusLine(latin1(line));
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let reason = parts.next();
    if version != b"HTTP/1.1" {
        // As websockets tells them apart: three parts, or a version, make a
        // status line of another protocol ("220 smtp.invalid ESMTP").
        if reason.is_some() || is_version(version) {
            return Err(HttpError::UnsupportedProtocol(latin1(line)));
        }
        return Err(bad());
    }
    let reason = reason.unwrap_or(b"");
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let status: u16 = latin1(code).parse().map_err(|_| bad())?;
    if !(100..600).contains(&status) || !is_field_value(reason) {
        return Err(bad());
    }
    Ok((latin1(version), status, latin1(reason)))
}

fn parse_header(line: &[u8]) -> Result<(String, String), HttpError> {
    let bad = || HttpError::InvalidHeader(latin1(line));
    let colon = memchr(b':', line).ok_or_else(bad)?;
    let name = &line[..colon];
    // No whitespace between name and colon (RFC 9112 section 5.1); a line
    // starting with whitespace is obsolete folding, refused as well.
    if !is_token(name) {
        return Err(bad());
    }
    let value = trim_ows(&line[colon + 1..]);
    if !is_field_value(value) {
        return Err(bad());
    }
    Ok((latin1(name), latin1(value)))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// What a plain, valid upgrade request asks for, found by
/// [`check_upgrade`]: everything the server needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Accept` for the request's key.
    pub accept: String,
    /// The `Origin` header, when sent.
    pub origin: Option<String>,
    /// Every `Sec-WebSocket-Extensions` value, in order, as sent.
    pub extensions: Vec<String>,
    /// The subprotocols offered, in order, from every
    /// `Sec-WebSocket-Protocol` header.
    pub subprotocols: Vec<String>,
}

/// Checks a request against the rules of RFC 6455 section 4.2.1 on the
/// path that nearly every client takes, and returns what it asks for.
///
/// `None` means "not this path", never "invalid": a request that breaks a
/// rule, and also a valid one written in an unusual way (a header list
/// with empty elements, `Upgrade` split over two lines), is left to the
/// full checks, which say exactly what is wrong. When this returns a value,
/// those checks would pass with the same results: a `GET` over HTTP/1.1,
/// one non-empty `Host`, a `Connection` list holding `upgrade`, one
/// `Upgrade: websocket`, one valid key, one `Sec-WebSocket-Version: 13`, at
/// most one `Origin`, and subprotocol lists of tokens.
pub fn check_upgrade(request: &Request) -> Option<Upgrade> {
    if request.method != "GET" || request.protocol != "HTTP/1.1" {
        return None;
    }
    let mut host = None;
    let mut hosts = 0;
    let mut connection_upgrade = false;
    let mut connections = 0;
    let mut upgrade = None;
    let mut upgrades = 0;
    let mut key = None;
    let mut keys = 0;
    let mut version = None;
    let mut versions = 0;
    let mut origin = None;
    let mut origins = 0;
    let mut extensions = Vec::new();
    let mut subprotocols = Vec::new();
    for (name, value) in &request.headers {
        let value = value.as_str();
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            host = Some(value);
        } else if name.eq_ignore_ascii_case("connection") {
            connections += 1;
            let items = simple_tokens(value)?;
            connection_upgrade |= items.iter().any(|item| item.eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrades += 1;
            upgrade = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            keys += 1;
            key = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            versions += 1;
            version = Some(value);
        } else if name.eq_ignore_ascii_case("origin") {
            origins += 1;
            origin = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            extensions.push(value.to_string());
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            subprotocols.extend(simple_tokens(value)?.into_iter().map(str::to_string));
        }
    }
    let key = key.filter(|_| keys == 1)?;
    let valid = hosts == 1
        && host.is_some_and(|h| !h.is_empty())
        && connections > 0
        && connection_upgrade
        && upgrades == 1
        && upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        && is_valid_key(key)
        && versions == 1
        && version == Some("13")
        && origins <= 1;
    if !valid {
        return None;
    }
    Some(Upgrade {
        accept: accept_key(key),
        origin: origin.map(str::to_string),
        extensions,
        subprotocols,
    })
}

/// The items of a comma-separated list of tokens (RFC 9110 section 5.6.1)
/// written plainly: every element a token, whitespace around commas only.
/// `None` for anything else, empty elements included, which the full
/// parser skips or refuses.
fn simple_tokens(value: &str) -> Option<Vec<&str>> {
    value
        .split(',')
        .map(|item| {
            let item = item.trim_matches(|c| c == ' ' || c == '\t');
            is_token(item.as_bytes()).then_some(item)
        })
        .collect()
}

/// Every header of a message in one string, `name NUL value NUL name ...`:
/// the form `ferrows.datastructures.Headers` keeps until it is used. NUL
/// cannot occur in a valid name or value.
pub fn pack_headers(headers: &[(String, String)]) -> String {
    let len = headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut packed = String::with_capacity(len);
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            packed.push('\0');
        }
        packed.push_str(name);
        packed.push('\0');
        packed.push_str(value);
    }
    packed
}

/// True for a header value that `Headers` accepts without complaint: tabs,
/// spaces, visible ASCII and U+0080 to U+00FF (sent as ISO-8859-1 bytes).
pub fn is_header_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c == '\t' || (' '..='~').contains(&c) || ('\u{80}'..='\u{ff}').contains(&c))
}

/// True for a header name: a token (RFC 9110 section 5.6.2).
pub fn is_header_name(name: &str) -> bool {
    is_token(name.as_bytes())
}

/// The 101 response accepting a WebSocket upgrade: its head as sent
/// (status line, headers, empty line) and its headers packed as by
/// [`pack_headers`].
///
/// The headers are those of websockets' servers, in its order: `Date` when
/// given, `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, then
/// `Sec-WebSocket-Extensions` and `Sec-WebSocket-Protocol` when negotiated,
/// then `extra` (for example `Server`). `None` when a value or a name of
/// `extra` is not one HTTP allows: the caller then builds the response the
/// slow way, which reports the bad value.
pub fn upgrade_response(
    accept: &str,
    date: Option<&str>,
    extensions: Option<&str>,
    subprotocol: Option<&str>,
    extra: &[(&str, &str)],
) -> Option<(Vec<u8>, String)> {
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(6 + extra.len());
    if let Some(date) = date {
        headers.push(("Date", date));
    }
    headers.push(("Upgrade", "websocket"));
    headers.push(("Connection", "Upgrade"));
    headers.push(("Sec-WebSocket-Accept", accept));
    if let Some(extensions) = extensions {
        headers.push(("Sec-WebSocket-Extensions", extensions));
    }
    if let Some(subprotocol) = subprotocol {
        headers.push(("Sec-WebSocket-Protocol", subprotocol));
    }
    headers.extend_from_slice(extra);
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    let mut packed = String::with_capacity(200);
    for (i, (name, value)) in headers.iter().enumerate() {
        if !is_header_name(name) || !is_header_value(value) {
            return None;
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        // ISO-8859-1: one byte per character, all below U+0100 (checked).
        head.extend(value.chars().map(|c| c as u8));
        head.extend_from_slice(b"\r\n");
        if i > 0 {
            packed.push('\0');
        }
        packed.push_str(name);
        packed.push('\0');
        packed.push_str(value);
    }
    head.extend_from_slice(b"\r\n");
    Some((head, packed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn parse(kind: Kind, data: &[u8]) -> Result<Option<Message>, HttpError> {
        Parser::new(kind, Limits::default()).feed(data)
    }

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            path: "/".into(),
            protocol: "HTTP/1.1".into(),
            headers: headers.iter().map(|&(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    const PLAIN: &[(&str, &str)] = &[
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];

    #[test]
    fn byte_classes_are_rfc_9110s() {
        // Every byte, against the grammar written out: tchar (section 5.6.2)
        // and field-vchar / SP / HTAB (section 5.5).
        for b in 0..=255u8 {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), tchar, "tchar {b:#04x}");
            let value = b == b'\t' || b == b' ' || (0x21..=0x7E).contains(&b) || b >= 0x80;
            assert_eq!(is_field_value(&[b]), value, "field value {b:#04x}");
        }
        assert_eq!(latin1(b"plain ascii"), "plain ascii");
        assert_eq!(latin1(b"caf\xe9 \xc3\xa9"), "caf\u{e9} \u{c3}\u{a9}");
    }

    #[test]
    fn check_upgrade_returns_what_a_plain_request_asks_for() {
        let up = check_upgrade(&request(PLAIN)).unwrap();
        assert_eq!(up.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!((up.origin, up.extensions.len(), up.subprotocols.len()), (None, 0, 0));

        // Any case of names and of the tokens; Firefox's Connection list;
        // offers on several lines, kept in order.
        let mut headers = vec![
            ("hOsT", "example.com"),
            ("UPGRADE", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Origin", "https://example.com"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            ("sec-websocket-extensions", "x-other"),
            ("Sec-WebSocket-Protocol", "chat,\tsuperchat"),
            ("sec-websocket-protocol", "v2"),
        ];
        let up = check_upgrade(&request(&headers)).unwrap();
        assert_eq!(up.origin.as_deref(), Some("https://example.com"));
        assert_eq!(up.extensions, ["permessage-deflate; client_max_window_bits", "x-other"]);
        assert_eq!(up.subprotocols, ["chat", "superchat", "v2"]);
        headers.push(("Origin", "https://other.example"));
        assert_eq!(check_upgrade(&request(&headers)), None);
    }

    #[test]
    fn check_upgrade_leaves_everything_else_to_the_full_checks() {
        let replace = |name: &str, value: Option<&str>| -> Request {
            let mut headers: Vec<(&str, &str)> = PLAIN.iter().copied().filter(|(n, _)| *n != name).collect();
            if let Some(value) = value {
                headers.push((name, value));
            }
            request(&headers)
        };
        let mut cases = vec![
            replace("Host", None),
            replace("Host", Some("")),
            replace("Upgrade", None),
            replace("Upgrade", Some("websocket, h2c")),
            replace("Upgrade", Some("websocket/13")),
            replace("Connection", None),
            replace("Connection", Some("keep-alive")),
            replace("Connection", Some("Upgrade,,")),
            replace("Sec-WebSocket-Key", None),
            replace("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25jZQ")),
            replace("Sec-WebSocket-Version", None),
            replace("Sec-WebSocket-Version", Some("8")),
        ];
        for name in ["Host", "Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version"] {
            let mut headers = PLAIN.to_vec();
            headers.push(PLAIN.iter().copied().find(|(n, _)| *n == name).unwrap());
            cases.push(request(&headers));
        }
        for protocol in ["", "chat, , v2", "chat;v=1", "\"chat\""] {
            let mut headers = PLAIN.to_vec();
            headers.push(("Sec-WebSocket-Protocol", protocol));
            cases.push(request(&headers));
        }
        let mut post = request(PLAIN);
        post.method = "POST".into();
        let mut http10 = request(PLAIN);
        http10.protocol = "HTTP/1.0".into();
        cases.extend([post, http10]);
        for case in &cases {
            assert_eq!(check_upgrade(case), None, "{case:?}");
        }
    }

    #[test]
    fn upgrade_response_head_and_packed_headers() {
        let (head, packed) = upgrade_response(
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            Some("Wed, 02 Dec 2026 15:00:00 GMT"),
            Some("permessage-deflate; client_max_window_bits=12"),
            Some("chat"),
            &[("Server", "ferrows caf\u{e9}")],
        )
        .unwrap();
        let mut expected = b"HTTP/1.1 101 Switching Protocols\r\nDate: Wed, 02 Dec 2026 15:00:00 GMT\r\n\
Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12\r\nSec-WebSocket-Protocol: chat\r\n\
Server: ferrows caf"
            .to_vec();
        expected.extend_from_slice(b"\xe9\r\n\r\n");
        assert_eq!(head, expected);
        assert_eq!(
            packed.split('\0').collect::<Vec<_>>(),
            [
                "Date",
                "Wed, 02 Dec 2026 15:00:00 GMT",
                "Upgrade",
                "websocket",
                "Connection",
                "Upgrade",
                "Sec-WebSocket-Accept",
                "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                "Sec-WebSocket-Extensions",
                "permessage-deflate; client_max_window_bits=12",
                "Sec-WebSocket-Protocol",
                "chat",
                "Server",
                "ferrows caf\u{e9}",
            ]
        );
        let (head, _) = upgrade_response("x", None, None, None, &[]).unwrap();
        assert_eq!(
            head,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"
        );
        // Values HTTP forbids, and names that aren't tokens.
        for (name, value) in [
            ("Server", "a\r\nX: y"),
            ("Server", "\u{100}"),
            ("Server", "a\0"),
            ("Bad Name", "v"),
        ] {
            assert_eq!(upgrade_response("x", None, None, None, &[(name, value)]), None);
        }
        assert_eq!(upgrade_response("x", None, None, Some("a\nb"), &[]), None);
    }

    #[test]
    fn packs_headers() {
        let headers = vec![("A".to_string(), "1".to_string()), ("b".to_string(), "".to_string())];
        assert_eq!(pack_headers(&headers), "A\u{0}1\u{0}b\u{0}");
        assert_eq!(pack_headers(&[]), "");
    }

    #[test]
    fn rfc6455_accept_key() {
        // RFC 6455 section 1.3.
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn keys() {
        let k = generate_key();
        assert!(is_valid_key(&k));
        assert_ne!(k, generate_key());
        assert!(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key("not base64 at all!!!!!!!"));
        assert!(!is_valid_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    }

    #[test]
    fn parses_a_request_in_any_chunking() {
        let expected = parse(Kind::Request, REQUEST).unwrap().unwrap();
        let Message::Request(r) = &expected else { panic!() };
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.protocol.as_str()),
            ("GET", "/chat?x=1", "HTTP/1.1")
        );
        assert_eq!(r.headers[0], ("Host".to_string(), "server.example.com".to_string()));
        assert_eq!(r.headers.len(), 5);
        for step in 1..20 {
            let mut p = Parser::new(Kind::Request, Limits::default());
            let mut got = None;
            for chunk in REQUEST.chunks(step) {
                if let Some(m) = p.feed(chunk).unwrap() {
                    got = Some(m);
                }
            }
            assert_eq!(got.as_ref(), Some(&expected), "step={step}");
        }
    }

    #[test]
    fn keeps_bytes_after_the_head() {
        let mut data = REQUEST.to_vec();
        data.extend_from_slice(b"\x81\x85abcd");
        let mut p = Parser::new(Kind::Request, Limits::default());
        assert!(p.feed(&data).unwrap().is_some());
        p.feed(b"more").unwrap();
        assert_eq!(p.take_remaining(), b"\x81\x85abcdmore");
    }

    #[test]
    fn limits_are_enforced_as_bytes_arrive() {
        let limits = Limits::default();
        let mut p = Parser::new(Kind::Request, limits);
        let mut line = b"GET /".to_vec();
        line.extend(std::iter::repeat(b'a').take(8180));
        assert_eq!(p.feed(&line), Ok(None));
        assert_eq!(
            p.feed(&[b'a'; 20]),
            Err(HttpError::RequestLineTooLong {
                limit: 8192,
                read: 8205
            })
        );
        // A complete line counts its CRLF, as websockets counts it.
        let mut p = Parser::new(Kind::Request, limits);
        let mut line = b"GET /".to_vec();
        line.extend(std::iter::repeat(b'a').take(8186));
        line.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(
            p.feed(&line),
            Err(HttpError::RequestLineTooLong {
                limit: 8192,
                read: 8202
            })
        );

        let mut p = Parser::new(Kind::Request, limits);
        p.feed(b"GET / HTTP/1.1\r\nX: ").unwrap();
        assert_eq!(
            p.feed(&vec![b'v'; 100_000]),
            Err(HttpError::HeaderLineTooLong {
                limit: 8192,
                read: 100_003
            })
        );

        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..1000 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        assert_eq!(
            parse(Kind::Request, &many),
            Err(HttpError::TooManyHeaders { limit: 128 })
        );

        let mut ok = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..128 {
            ok.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        ok.extend_from_slice(b"\r\n");
        assert!(parse(Kind::Request, &ok).unwrap().is_some());
    }

    #[test]
    fn malformed_requests() {
        let cases: &[(&[u8], u16)] = &[
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
            (b"GET /\r\n\r\n", 400),
            (b"GET  / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\nHost: x\n\n", 400),
            (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        ];
        for (data, status) in cases {
            let err = parse(Kind::Request, data).unwrap_err();
            assert_eq!(err.status(), *status, "{:?}: {err}", String::from_utf8_lossy(data));
        }
        assert!(parse(Kind::Request, b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .is_some());
        // Other versions parse; the server answers them with 505.
        let Some(Message::Request(r)) = parse(Kind::Request, b"GET / HTTP/1.0\r\n\r\n").unwrap() else {
            panic!()
        };
        assert_eq!(r.protocol, "HTTP/1.0");
    }

    #[test]
    fn responses_with_and_without_bodies() {
        let Some(Message::Response(r)) = parse(
            Kind::Response,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.status, r.reason.as_str(), r.body.len()),
            (101, "Switching Protocols", 0)
        );

        let mut p = Parser::new(Kind::Response, Limits::default());
        assert_eq!(
            p.feed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 15\r\n\r\nInvalid"),
            Ok(None)
        );
        let Some(Message::Response(r)) = p.feed(b" API key").unwrap() else {
            panic!()
        };
        assert_eq!(r.body, b"Invalid API key");

        let mut p = Parser::new(Kind::Response, Limits::default());
        assert_eq!(p.feed(b"HTTP/1.1 500 Oops\r\n\r\npartial"), Ok(None));
        let Some(Message::Response(r)) = p.feed_eof().unwrap() else {
            panic!()
        };
        assert_eq!(r.body, b"partial");

        let small = Limits {
            max_body: 4,
            ..Limits::default()
        };
        let mut p = Parser::new(Kind::Response, small);
        assert_eq!(
            p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Err(HttpError::BodyTooLarge { limit: 4 })
        );
        assert_eq!(
            parse(Kind::Response, b"HTTP/1.0 200 OK\r\n\r\n").unwrap_err().status(),
            505
        );
        assert!(parse(Kind::Response, b"HTTP/1.1 99 Nope\r\n\r\n").is_err());
        let mut p = Parser::new(Kind::Response, Limits::default());
        p.feed(b"HTTP/1.1 101 Switching").unwrap();
        assert_eq!(p.feed_eof(), Err(HttpError::Eof("HTTP status line")));
        let mut p = Parser::new(Kind::Response, Limits::default());
        p.feed(b"HTTP/1.1 101 Switching Protocols\r\n").unwrap();
        assert_eq!(p.feed_eof(), Err(HttpError::Eof("HTTP headers")));
        let mut p = Parser::new(Kind::Response, Limits::default());
        p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").unwrap();
        assert_eq!(p.feed_eof(), Err(HttpError::Eof("HTTP response body")));
    }

    #[test]
    fn eof_names_the_part_of_the_request_being_read() {
        for (data, part) in [
            (&b""[..], "HTTP request line"),
            (b"GET / HT", "HTTP request line"),
            (b"GET / HTTP/1.1\r\n", "HTTP headers"),
            (b"GET / HTTP/1.1\r\nHost: x\r\n", "HTTP headers"),
        ] {
            let mut p = Parser::new(Kind::Request, Limits::default());
            p.feed(data).unwrap();
            assert_eq!(p.feed_eof(), Err(HttpError::Eof(part)), "{data:?}");
        }
    }

    #[test]
    fn start_line_is_refused_once_complete() {
        // Before any header: a peer that doesn't speak HTTP may send none.
        let mut p = Parser::new(Kind::Request, Limits::default());
        assert_eq!(
            p.feed(b"HELO relay.invalid\r\n"),
            Err(HttpError::InvalidRequestLine("HELO relay.invalid".into()))
        );
        let mut p = Parser::new(Kind::Response, Limits::default());
        assert_eq!(
            p.feed(b"220 smtp.invalid\r\n"),
            Err(HttpError::InvalidStatusLine("220 smtp.invalid".into()))
        );
        let mut p = Parser::new(Kind::Response, Limits::default());
        let err = p.feed(b"220 smtp.invalid ESMTP Postfix\r\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported protocol; expected HTTP/1.1: 220 smtp.invalid ESMTP Postfix"
        );
    }

    #[test]
    fn non_http_start_fails_without_waiting_for_a_line_end() {
        // A TLS ClientHello's record header, then no LF for a while.
        let mut p = Parser::new(Kind::Request, Limits::default());
        assert!(matches!(
            p.feed(b"\x16\x03\x01\x02\x00\x01"),
            Err(HttpError::InvalidRequestLine(_))
        ));
        let mut p = Parser::new(Kind::Request, Limits::default());
        assert!(matches!(p.feed(b" GET"), Err(HttpError::InvalidRequestLine(_))));
        let mut p = Parser::new(Kind::Response, Limits::default());
        assert!(matches!(p.feed(b"HTTX"), Err(HttpError::InvalidStatusLine(_))));
        // Every prefix of a valid request or response is only incomplete.
        for (kind, valid) in [
            (Kind::Request, REQUEST),
            (Kind::Response, &b"HTTP/1.1 101 OK\r\n\r\n"[..]),
        ] {
            for n in 0..valid.len() {
                let mut p = Parser::new(kind, Limits::default());
                assert_eq!(p.feed(&valid[..n]), Ok(None), "prefix of {n} bytes");
            }
        }
    }
}
