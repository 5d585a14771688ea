//! Shared body of the `http_request` and `http_response` targets.
//!
//! Input layout: a chunking byte, then the bytes the peer sends, fed to
//! `handshake::Parser` in chunks (sizes from the chunking byte, 0: all at
//! once), then EOF. Small limits make the limit checks reachable.
//!
//! Documented outcomes only: a message, "need more", or an `HttpError`
//! whose status is one a server sends; never a panic. Chunking never turns a
//! success into a failure or changes the message, and the bytes after the
//! message are handed back untouched.

use ferrows::handshake::{Kind, Limits, Message, Parser};

const LIMITS: Limits = Limits {
    max_line: 256,
    max_headers: 16,
    max_body: 1024,
};

#[derive(Debug, PartialEq)]
enum Outcome {
    Message(Message, Vec<u8>),
    Incomplete,
    Failed,
}

fn parse<'a>(kind: Kind, pieces: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = Parser::new(kind, LIMITS);
    let mut found = None;
    for piece in pieces {
        match parser.feed(piece) {
            Ok(Some(m)) => {
                assert!(found.is_none(), "two messages from one parser");
                found = Some(m);
            }
            Ok(None) => {}
            Err(e) => {
                assert!(found.is_none(), "error after the message");
                assert!(
                    matches!(e.status(), 400 | 413 | 414 | 431 | 501 | 505),
                    "status {}",
                    e.status()
                );
                return Outcome::Failed;
            }
        }
    }
    if found.is_none() {
        match parser.feed_eof() {
            Ok(Some(m)) => found = Some(m),
            Ok(None) => return Outcome::Incomplete,
            Err(e) => {
                assert!(matches!(e.status(), 400 | 413 | 414 | 431 | 501 | 505));
                return Outcome::Failed;
            }
        }
    }
    let message = found.expect("checked above");
    match &message {
        Message::Request(r) => {
            assert_eq!(kind, Kind::Request);
            assert!(r.headers.len() <= LIMITS.max_headers);
        }
        Message::Response(r) => {
            assert_eq!(kind, Kind::Response);
            assert!((100..600).contains(&r.status));
            assert!(r.body.len() <= LIMITS.max_body);
        }
    }
    Outcome::Message(message, parser.take_remaining())
}

pub fn run(kind: Kind, data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = parse(kind, std::iter::once(stream));
    if let Outcome::Message(_, rest) = &whole {
        assert!(stream.ends_with(rest), "remaining bytes are a suffix of the input");
    }
    if seed == 0 {
        return;
    }
    let size = usize::from(seed);
    let chunked = parse(kind, stream.chunks(size));
    match (&whole, &chunked) {
        // The line-length limit is checked on partial lines too, so a chunked
        // feed may stop earlier, with another error, but never succeed
        // where the whole input fails, nor the other way round.
        (Outcome::Failed, Outcome::Failed) => {}
        _ => assert_eq!(whole, chunked),
    }
}
