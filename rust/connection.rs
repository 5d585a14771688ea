//! The WebSocket connection after the opening handshake: framing, the closing
//! handshake and failure handling (RFC 6455 sections 5, 6 and 7).
//!
//! [`Connection::receive_data`] takes whatever bytes the network delivered,
//! in any chunking, and appends events; the `send_*` methods append bytes to
//! the output buffer. A violation by the peer never surfaces as an error of
//! `receive_data`: the connection fails, queues the close frame to send and
//! records the cause (section 7.1.7). With [`Config::defer_failure`], the
//! close frame waits for [`Connection::fail_pending`], so that answers to
//! the messages that came before the violation can go out first.

use crate::close::{is_valid_code, CloseFrame};
use crate::error::{close_code, SendError, Violation};
use crate::extension::{DataFrame, DecodeBuf, Extension, FrameDecoding};
use crate::frame::{write_frame, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
use crate::mask::{copy_masked, extend_masked};
use crate::message::{invalid_utf8, MessageState, Utf8Check};
use crate::sink::{PayloadSink, SinkFactory};
use crate::utf8::into_string;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones, closes TCP first.
    Server,
    /// Sends masked frames, waits for the server to close TCP.
    Client,
}

/// Connection state (RFC 6455 section 4 and 7); values match `ferrows.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Opening handshake in progress: the Python layer's state before the
    /// core exists; a core connection is never in it.
    Connecting = 0,
    /// Messages flow both ways.
    Open = 1,
    /// A close frame was sent or received.
    Closing = 2,
    /// The TCP connection is closed.
    Closed = 3,
}

impl State {
    /// Lower-case name, as used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Open => "open",
            State::Closing => "closing",
            State::Closed => "closed",
        }
    }
}

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server or client.
    pub role: Role,
    /// Largest message, in bytes after decoding; `None` for no limit.
    pub max_size: Option<usize>,
    /// Largest number of frames in one message; `None` for no limit.
    pub max_fragments: Option<usize>,
    /// Largest data frame on the wire; `None` for no limit besides
    /// `max_size` (websockets' `max_size=(message, fragment)`).
    pub max_frame: Option<usize>,
    /// Deliver whole messages ([`Event::Text`], [`Event::Binary`]) rather
    /// than one [`Event::Frame`] per data frame.
    pub assemble: bool,
    /// When assembling, hand the frames of a fragmented message as they
    /// arrive ([`Event::TextFragment`], [`Event::BinaryFragment`]) instead
    /// of holding them until the last one. A message in one frame is still
    /// one [`Event::Text`] or [`Event::Binary`]; the size limit and the
    /// UTF-8 check still apply to the whole message.
    pub fragments: bool,
    /// RSV bits passed through untouched, for extensions implemented above
    /// the core; the bits of extensions added with
    /// [`Connection::add_extension`] are allowed as well.
    pub extra_rsv: u8,
    /// Validate text as UTF-8. Turned off when extensions implemented above
    /// the core still have to decode the payload (it may be compressed).
    /// Whole text messages ([`Event::Text`]) are checked when they are built
    /// even then: a `String` is UTF-8 whatever the configuration says.
    pub check_text: bool,
    /// On a violation by the peer, stop reading and report [`Event::Failed`]
    /// but write nothing and stay OPEN until [`Connection::fail_pending`].
    /// The application can then answer the messages received before the
    /// violation, and those answers go out before the close frame, in the
    /// order the peer's frames came.
    pub defer_failure: bool,
}

impl Config {
    /// Defaults of websockets: 1 MiB messages, 4096 fragments, frames
    /// delivered one by one.
    pub fn new(role: Role) -> Self {
        Config {
            role,
            max_size: Some(1 << 20),
            max_fragments: Some(4096),
            max_frame: None,
            assemble: false,
            fragments: false,
            extra_rsv: 0,
            check_text: true,
            defer_failure: false,
        }
    }
}

/// What the peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text message (assembling mode).
    Text(String),
    /// A complete binary message (assembling mode).
    Binary(Vec<u8>),
    /// A complete binary message whose payload went into a sink (see
    /// [`Connection::set_sink_factory`]); take it with
    /// [`Connection::take_sink`].
    BinarySink,
    /// A frame of a fragmented text message ([`Config::fragments`]): the
    /// text it completes, a character split across frames coming out whole
    /// in the fragment that ends it; `fin` on the last one.
    TextFragment {
        /// Decoded text.
        data: String,
        /// Last fragment of the message.
        fin: bool,
    },
    /// A frame of a fragmented binary message ([`Config::fragments`]).
    BinaryFragment {
        /// Payload, after extensions decoded it.
        data: Vec<u8>,
        /// Last fragment of the message.
        fin: bool,
    },
    /// A data frame (frame mode), after extensions decoded it.
    Frame {
        /// Text, Binary or Continuation.
        opcode: OpCode,
        /// FIN bit.
        fin: bool,
        /// RSV bits left after extensions decoded the frame.
        rsv: u8,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A ping; the pong is already queued when the connection is open.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame, with its raw payload; the reply is already queued.
    Close(Vec<u8>),
    /// The connection failed: see [`Connection::failure`].
    Failed,
}

/// A data frame started by [`Connection::begin_frame`].
#[derive(Debug, Clone, Copy)]
pub struct FrameStart {
    /// Header bytes; the first `header_len` are valid.
    pub header: [u8; 14],
    /// Length of the header.
    pub header_len: usize,
    /// Key to mask the payload with (clients).
    pub mask: Option<[u8; 4]>,
}

/// Receiving the next frame: its header, its payload, or nothing at all.
enum ReadState {
    Header,
    Payload {
        header: FrameHeader,
        /// The payload unmasked; for a frame that the extension decodes as
        /// it arrives, the decoded bytes instead (see [`Decoding`]).
        buf: Vec<u8>,
        /// Payload bytes received so far.
        received: usize,
        /// The bytes going into `buf` are text validated as they arrive
        /// (see [`MessageState::feed_text`]).
        fed: bool,
        decoding: Decoding,
    },
    /// A large single-frame binary message going into a sink.
    Sink {
        header: FrameHeader,
        sink: Box<dyn PayloadSink>,
        filled: usize,
    },
    /// After a close frame or a failure: input is ignored until EOF.
    Discard,
}

/// What extensions do to the payload of the frame being received.
#[derive(Debug, Clone, Copy)]
enum Decoding {
    /// Nothing: the payload is the frame's data, with `rsv` left (no
    /// extension, a control frame, or [`FrameDecoding::Unchanged`]).
    Plain { rsv: u8 },
    /// The extensions decode the complete frame ([`Extension::decode`]).
    Whole,
    /// The only extension decodes the payload as it arrives into `buf`
    /// ([`FrameDecoding::Streamed`]), with `rsv` left. When messages are
    /// assembled, `buf` is the message's buffer, taken for the time of the
    /// frame: its bytes go where they belong at once, and this frame's
    /// begin at `start`.
    Streamed { rsv: u8, start: usize },
}

/// Largest piece of a masked payload unmasked at once for an extension
/// decoding it as it arrives: the encoded payload is never copied whole.
const UNMASK_PIECE: usize = 64 * 1024;

/// Where masking keys come from.
enum MaskSource {
    /// Keys from the operating system's CSPRNG, fetched 256 at a time.
    Random { pool: Vec<u8>, pos: usize },
    /// One fixed key, for reproducible tests.
    Fixed([u8; 4]),
}

impl Default for MaskSource {
    fn default() -> Self {
        MaskSource::Random {
            pool: Vec::new(),
            pos: 0,
        }
    }
}

impl MaskSource {
    fn next(&mut self) -> [u8; 4] {
        match self {
            MaskSource::Fixed(k) => *k,
            MaskSource::Random { pool, pos } => {
                if *pos + 4 > pool.len() {
                    pool.resize(1024, 0);
                    // A client without entropy cannot mask safely (RFC 6455
                    // section 10.3); the OS source failing is unrecoverable.
                    getrandom::fill(pool).expect("operating system random source failed");
                    *pos = 0;
                }
                let mut k = [0u8; 4];
                k.copy_from_slice(&pool[*pos..*pos + 4]);
                *pos += 4;
                k
            }
        }
    }
}

/// First bytes of a payload allocated up front; the rest grows as it arrives
/// so that a header announcing a large frame costs nothing until the bytes
/// actually come.
const PREALLOC_LIMIT: usize = 1 << 20;

/// Largest payload put into a sink. A sink holds the whole announced length
/// from the header on; beyond this size (possible only without `max_size`)
/// the growing buffer is used instead, so that a peer announcing a huge
/// frame and sending little of it makes us reserve little.
const SINK_MAX: u64 = 64 << 20;

/// Output buffer capacity kept between sends; a buffer grown past it by a
/// large message is released rather than held for the connection's life.
const OUTPUT_KEEP: usize = 64 * 1024;

/// A WebSocket connection in the OPEN, CLOSING or CLOSED state.
pub struct Connection {
    config: Config,
    state: State,
    read: ReadState,
    header_buf: Vec<u8>,
    message: MessageState,
    extensions: Vec<Box<dyn Extension>>,
    allowed_rsv: u8,
    /// What few connections need, or only once closing (see [`Rare`]).
    rare: Option<Box<Rare>>,
    events: Vec<Event>,
    output: Vec<u8>,
    eof_pending: bool,
    eof_sent: bool,
    eof_rcvd: bool,
    expect_continuation: bool,
    close_rcvd_then_sent: Option<bool>,
    /// A failure deferred by [`Config::defer_failure`] waits for
    /// [`Connection::fail_pending`].
    failure_pending: bool,
    /// Extensions processed a frame since the last idle check.
    extension_activity: bool,
    /// Pongs are held back rather than queued (see [`Connection::hold_pongs`]).
    hold_pongs: bool,
    /// Storage for large binary messages (see [`Connection::set_sink_factory`]).
    sinks: Option<Box<dyn SinkFactory>>,
}

/// The parts of a connection's state that a server's idle connection does
/// not use: the masking keys (clients only), the close frames and the
/// failure (once closing), a held pong and filled sinks (now and then).
/// Kept out of line, created on first use, they take 200 bytes off every
/// idle connection's core.
#[derive(Default)]
struct Rare {
    masks: MaskSource,
    /// Key for every frame while set (see [`Connection::set_mask_override`]).
    mask_override: Option<[u8; 4]>,
    close_rcvd: Option<CloseFrame>,
    close_sent: Option<CloseFrame>,
    failure: Option<Violation>,
    /// Payload of the latest ping received while pongs were held back.
    held_pong: Option<Vec<u8>>,
    /// Filled sinks, in the order of their [`Event::BinarySink`] events.
    done_sinks: std::collections::VecDeque<Box<dyn PayloadSink>>,
}

impl Connection {
    /// A connection whose opening handshake has completed.
    pub fn new(config: Config) -> Self {
        let allowed_rsv = config.extra_rsv & 0x7;
        Connection {
            config,
            state: State::Open,
            read: ReadState::Header,
            header_buf: Vec::new(),
            message: MessageState::default(),
            extensions: Vec::new(),
            allowed_rsv,
            rare: None,
            events: Vec::new(),
            output: Vec::new(),
            eof_pending: false,
            eof_sent: false,
            eof_rcvd: false,
            expect_continuation: false,
            close_rcvd_then_sent: None,
            failure_pending: false,
            extension_activity: false,
            hold_pongs: false,
            sinks: None,
        }
    }

    /// Lets the I/O layer provide the storage of large binary messages
    /// that arrive in one frame, when no extension transforms frames and
    /// messages are assembled: the payload is unmasked straight into it,
    /// and [`Event::BinarySink`] reports the message (see [`crate::sink`]).
    pub fn set_sink_factory(&mut self, factory: Box<dyn SinkFactory>) {
        self.sinks = Some(factory);
    }

    /// Takes the sink of the oldest [`Event::BinarySink`] not taken yet.
    pub fn take_sink(&mut self) -> Option<Box<dyn PayloadSink>> {
        self.rare.as_mut()?.done_sinks.pop_front()
    }

    /// Holds back the automatic answers to pings while `hold` is true, then
    /// queues one pong, for the latest ping, when it turns false.
    ///
    /// The I/O layer holds pongs while its write buffer is above the
    /// high-water mark: a peer flooding pings without reading would
    /// otherwise grow that buffer without bound. RFC 6455 section 5.5.3
    /// allows answering only the most recent of several pings that arrived
    /// before a pong could be sent.
    pub fn hold_pongs(&mut self, hold: bool) {
        self.hold_pongs = hold;
        if !hold {
            if let Some(payload) = self.rare.as_mut().and_then(|r| r.held_pong.take()) {
                if self.state == State::Open {
                    self.write_control(OpCode::Pong, &payload);
                }
            }
        }
    }

    /// Adds a negotiated extension; frames go through extensions in the
    /// order they were added when sending, in reverse order when receiving.
    pub fn add_extension(&mut self, ext: Box<dyn Extension>) {
        self.allowed_rsv |= ext.rsv_bits() & 0x7;
        self.extensions.push(ext);
    }

    /// Lets extensions release memory if no data frame went through them
    /// since the previous call; returns whether they freed anything. Called
    /// periodically by the I/O layer, this frees the compression state of
    /// idle connections (the core has no clock of its own).
    pub fn compact_if_idle(&mut self) -> bool {
        let idle = !self.extension_activity;
        self.extension_activity = false;
        let mut freed = false;
        if idle {
            for ext in self.extensions.iter_mut() {
                freed |= ext.compact();
            }
        }
        freed
    }

    /// Uses one fixed masking key, so that tests get reproducible bytes.
    pub fn set_fixed_mask(&mut self, key: [u8; 4]) {
        self.rare().masks = MaskSource::Fixed(key);
    }

    /// Masks the frames written from now on with `key` rather than keys of
    /// the mask source, until called with `None`. The caller chooses the
    /// key of one send (or of the replies one read queues), then clears it:
    /// the Python binding does so when the application replaced the
    /// function that masking keys come from in Python, as websockets' users
    /// do to get deterministic output.
    pub fn set_mask_override(&mut self, key: Option<[u8; 4]>) {
        if key.is_some() || self.rare.is_some() {
            self.rare().mask_override = key;
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes the message size limit.
    pub fn set_max_size(&mut self, max_size: Option<usize>) {
        self.config.max_size = max_size;
    }

    /// Switches between whole messages and frames; call it before feeding
    /// data, since a message in progress is not converted.
    pub fn set_assemble(&mut self, assemble: bool) {
        self.config.assemble = assemble;
    }

    /// Changes [`Config::fragments`]; like [`Connection::set_assemble`],
    /// before feeding data.
    pub fn set_fragments(&mut self, fragments: bool) {
        self.config.fragments = fragments;
    }

    /// Changes [`Config::defer_failure`].
    pub fn set_defer_failure(&mut self, defer: bool) {
        self.config.defer_failure = defer;
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Close frame received, if any.
    pub fn close_rcvd(&self) -> Option<&CloseFrame> {
        self.rare.as_ref()?.close_rcvd.as_ref()
    }

    /// Close frame sent, if any.
    pub fn close_sent(&self) -> Option<&CloseFrame> {
        self.rare.as_ref()?.close_sent.as_ref()
    }

    /// Whether the close frame was received before ours was sent; `None`
    /// unless both were exchanged.
    pub fn close_rcvd_then_sent(&self) -> Option<bool> {
        self.close_rcvd_then_sent
    }

    /// The violation that failed the connection, if one did.
    pub fn failure(&self) -> Option<&Violation> {
        self.rare.as_ref()?.failure.as_ref()
    }

    /// The out-of-line part of the state, created on first use.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// True while a failure deferred by [`Config::defer_failure`] waits for
    /// [`Connection::fail_pending`].
    pub fn failure_pending(&self) -> bool {
        self.failure_pending
    }

    /// Applies a failure deferred by [`Config::defer_failure`], as it would
    /// have been applied when found (section 7.1.7): the close frame with
    /// the violation's code and reason if the connection is still OPEN, EOF
    /// if this is the server, state CLOSING.
    ///
    /// Returns true when it did; false when no failure is pending, it was
    /// applied already, or it no longer applies: the application failed the
    /// connection itself, or the peer's EOF closed it. After the
    /// application sent a close frame (state CLOSING), only the server's EOF
    /// remains to send: the peer's close frame will not be read.
    pub fn fail_pending(&mut self) -> bool {
        if !std::mem::replace(&mut self.failure_pending, false) || self.state == State::Closed {
            return false;
        }
        let Some(v) = self.failure() else {
            return false;
        };
        let (code, reason) = (v.close_code(), v.to_string());
        self.fail(code, &reason);
        true
    }

    /// True once EOF was queued for sending.
    pub fn eof_sent(&self) -> bool {
        self.eof_sent
    }

    /// True once the peer's EOF was received.
    pub fn eof_rcvd(&self) -> bool {
        self.eof_rcvd
    }

    /// Whether the I/O layer should expect the TCP connection to close soon
    /// and arm its close timer: true once a close frame was sent.
    pub fn close_expected(&self) -> bool {
        self.state == State::Closing
    }

    /// True when the outgoing side is in the middle of a fragmented message.
    pub fn sending_fragments(&self) -> bool {
        self.expect_continuation
    }

    /// Takes the events found so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Takes the bytes to write, and whether to half-close the transport
    /// after writing them.
    pub fn take_output(&mut self) -> (Vec<u8>, bool) {
        let eof = std::mem::replace(&mut self.eof_pending, false);
        (std::mem::take(&mut self.output), eof)
    }

    /// The bytes waiting to be written, without the EOF flag; pair with
    /// [`Connection::clear_output`] to reuse the buffer's allocation.
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// Empties the output buffer, keeping a small allocation for reuse.
    pub fn clear_output(&mut self) {
        if self.output.capacity() > OUTPUT_KEEP {
            self.output = Vec::new();
        } else {
            self.output.clear();
        }
    }

    /// Takes the pending EOF flag.
    pub fn take_eof(&mut self) -> bool {
        std::mem::replace(&mut self.eof_pending, false)
    }

    /// True when bytes or an EOF wait in the output buffer.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty() || self.eof_pending
    }

    // ---------------------------------------------------------------- input

    /// Feeds bytes received from the network.
    ///
    /// Events accumulate until [`Connection::take_events`]. Returns `Err`
    /// only when called after [`Connection::receive_eof`], which is a bug of
    /// the caller, not of the peer.
    pub fn receive_data(&mut self, data: &[u8]) -> Result<(), &'static str> {
        if self.eof_rcvd {
            return Err("stream ended");
        }
        let mut pos = 0;
        while pos < data.len() {
            match &mut self.read {
                ReadState::Discard => break,
                ReadState::Header => {
                    let parsed = if self.header_buf.is_empty() {
                        FrameHeader::parse(&data[pos..])
                    } else {
                        let old = self.header_buf.len();
                        let take = (14 - old).min(data.len() - pos);
                        self.header_buf.extend_from_slice(&data[pos..pos + take]);
                        let r = FrameHeader::parse(&self.header_buf);
                        // Only the bytes of the header itself leave `data`.
                        let r = r.map(|o| o.map(|(h, n)| (h, n - old)));
                        if !matches!(r, Ok(None)) {
                            self.header_buf.clear();
                        } else {
                            pos += take;
                            continue;
                        }
                        r
                    };
                    match parsed {
                        Ok(None) => {
                            self.header_buf.extend_from_slice(&data[pos..]);
                            pos = data.len();
                        }
                        Ok(Some((header, n))) => {
                            pos += n;
                            if let Err(v) = self.check_header(&header) {
                                self.fail_with(v);
                                break;
                            }
                            self.read = match self.sink_for(&header) {
                                Some(sink) => ReadState::Sink {
                                    header,
                                    sink,
                                    filled: 0,
                                },
                                None => match self.start_payload(header) {
                                    Ok(read) => read,
                                    Err(v) => {
                                        self.fail_with(v);
                                        break;
                                    }
                                },
                            };
                            if header.payload_len == 0 {
                                self.complete_frame();
                            }
                        }
                        Err(v) => {
                            self.fail_with(v);
                            break;
                        }
                    }
                }
                ReadState::Payload { header, received, .. } => {
                    let want = header.payload_len as usize - *received;
                    let n = want.min(data.len() - pos);
                    let read = self.read_payload(&data[pos..pos + n]);
                    pos += n;
                    if let Err(v) = read {
                        self.fail_with(v);
                        break;
                    }
                    if n == want {
                        self.complete_frame();
                    }
                }
                ReadState::Sink { header, sink, filled } => {
                    let want = header.payload_len as usize - *filled;
                    let n = want.min(data.len() - pos);
                    let chunk = &data[pos..pos + n];
                    let dst = &mut sink.bytes_mut()[*filled..*filled + n];
                    match header.mask {
                        Some(key) => copy_masked(dst, chunk, key, *filled),
                        None => dst.copy_from_slice(chunk),
                    }
                    *filled += n;
                    pos += n;
                    if n == want {
                        self.complete_frame();
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes the next bytes of the payload being read: unmasks them into
    /// the frame's buffer, or hands them to the extension that decodes them
    /// as they arrive, and validates the text that comes of them.
    fn read_payload(&mut self, chunk: &[u8]) -> Result<(), Violation> {
        let ReadState::Payload {
            header,
            buf,
            received,
            fed,
            decoding,
        } = &mut self.read
        else {
            return Ok(());
        };
        let before = buf.len();
        let (start, decoded) = match *decoding {
            Decoding::Streamed { start, .. } => {
                self.extension_activity = true;
                // What remains of the message's allowance after what this
                // frame already produced.
                let limit = self
                    .message
                    .remaining(self.config.max_size)
                    .map(|r| r.saturating_sub(before - start));
                let out = &mut DecodeBuf::new(buf);
                let ext = self.extensions[0].as_mut();
                (start, decode_chunk(ext, chunk, header.mask, *received, out, limit))
            }
            Decoding::Plain { .. } | Decoding::Whole => {
                match header.mask {
                    Some(key) => extend_masked(buf, chunk, key, *received),
                    None => buf.extend_from_slice(chunk),
                }
                (0, Ok(()))
            }
        };
        *received += chunk.len();
        // Section 8.1: fail as soon as the text is known invalid, not when
        // the frame is complete. A decoding error comes second: the bytes
        // decoded before it are checked first, so that the outcome does not
        // depend on the chunking.
        if *fed {
            self.message.feed_text(&buf[before..]).map_err(|e| {
                let at = (before - start) as isize + e.position;
                invalid_utf8(self.message.utf8_pending(), &buf[start..], at)
            })?;
        }
        let current = current_size(header.opcode, self.message.size);
        decoded.map_err(|v| frame_too_big(v, current, None, self.config.max_size))
    }

    /// The state that reads the payload of a frame other than one going
    /// into a sink; starts a message with its first frame, and asks the
    /// extension how it decodes a data frame.
    fn start_payload(&mut self, header: FrameHeader) -> Result<ReadState, Violation> {
        if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            self.message.start(header.opcode);
        }
        let decoding = match self.extensions.as_mut_slice() {
            _ if header.opcode.is_control() => Decoding::Plain { rsv: header.rsv },
            [] => Decoding::Plain { rsv: header.rsv },
            // One extension may decode the payload as it arrives; chained
            // ones each need the previous one's whole output.
            [ext] => match ext.begin_decode(header.opcode, header.fin, header.rsv, header.payload_len)? {
                FrameDecoding::Unchanged { rsv } => Decoding::Plain { rsv },
                FrameDecoding::Streamed { rsv } => Decoding::Streamed {
                    rsv,
                    start: self.message.buffer.len(),
                },
                FrameDecoding::Whole => Decoding::Whole,
            },
            _ => Decoding::Whole,
        };
        let buf = match decoding {
            // The decoded bytes go to the message at once; their size is
            // unknown, so the buffer grows as they come.
            Decoding::Streamed { .. } if self.config.assemble => std::mem::take(&mut self.message.buffer),
            Decoding::Streamed { .. } => Vec::new(),
            _ => Vec::with_capacity((header.payload_len as usize).min(PREALLOC_LIMIT)),
        };
        // The bytes that go into the buffer are the message's, but for
        // frames decoded whole: validate them as they come, those once
        // decoded.
        let fed = self.config.check_text
            && !header.opcode.is_control()
            && self.message.is_text()
            && !matches!(decoding, Decoding::Whole);
        Ok(ReadState::Payload {
            header,
            buf,
            received: 0,
            fed,
            decoding,
        })
    }

    /// A sink for the payload of `h`, when the factory agrees and nothing
    /// but the core's framing stands between the frame and the message: a
    /// whole binary message in one frame, no extension, messages assembled.
    /// Its size was checked against the limits with the header.
    fn sink_for(&mut self, h: &FrameHeader) -> Option<Box<dyn PayloadSink>> {
        let eligible = h.opcode == OpCode::Binary
            && h.fin
            && h.payload_len > 0
            && h.payload_len <= SINK_MAX
            && self.config.assemble
            && self.extensions.is_empty();
        if !eligible {
            return None;
        }
        let mut sink = self.sinks.as_mut()?.make(h.payload_len as usize)?;
        // A sink of the wrong size is declined rather than trusted.
        (sink.bytes_mut().len() == h.payload_len as usize).then_some(sink)
    }

    /// Records the peer's EOF (idempotent).
    ///
    /// EOF in the middle of the connection, without a closing handshake,
    /// fails it with 1006 and no close frame (RFC 6455 section 7.1.5).
    pub fn receive_eof(&mut self) {
        if self.eof_rcvd {
            return;
        }
        self.eof_rcvd = true;
        if !matches!(self.read, ReadState::Discard) {
            // Nothing to send after the peer is gone: never deferred.
            let violation = self.eof_violation();
            self.rare().failure = Some(violation);
            self.apply_failure();
            self.events.push(Event::Failed);
        } else if std::mem::replace(&mut self.failure_pending, false) {
            // A deferred failure is moot once the peer is gone; the server
            // still closes its side.
            if self.config.role == Role::Server && !self.eof_sent {
                self.send_eof();
            }
        }
        // A client closes its side once the server has closed its own.
        if self.config.role == Role::Client && !self.eof_sent {
            self.send_eof();
        }
        self.state = State::Closed;
    }

    /// What an EOF without a closing handshake interrupted, counted as
    /// websockets counts it: between frames, or so many bytes into the part
    /// of a frame being read (the first two bytes, the extended length, the
    /// masking key, the payload).
    fn eof_violation(&self) -> Violation {
        let (received, expected) = match &self.read {
            ReadState::Header if self.header_buf.is_empty() => return Violation::UnexpectedEof,
            ReadState::Header => {
                let buf = &self.header_buf;
                let extended = match buf.get(1).map(|b| b & 0x7f) {
                    None => 0,
                    Some(126) => 2,
                    Some(127) => 8,
                    Some(_) => 0,
                };
                if buf.len() < 2 {
                    (buf.len(), 2)
                } else if buf.len() < 2 + extended {
                    (buf.len() - 2, extended)
                } else {
                    (buf.len() - 2 - extended, 4)
                }
            }
            ReadState::Payload { header, received, .. } => (*received, header.payload_len as usize),
            ReadState::Sink { header, filled, .. } => (*filled, header.payload_len as usize),
            ReadState::Discard => return Violation::UnexpectedEof,
        };
        Violation::TruncatedFrame {
            received: received as u64,
            expected: expected as u64,
        }
    }

    fn check_header(&self, h: &FrameHeader) -> Result<(), Violation> {
        // Section 5.1: clients mask, servers don't.
        match (self.config.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(Violation::UnmaskedFrame),
            (Role::Client, true) => return Err(Violation::MaskedFrame),
            _ => {}
        }
        // Section 5.2: RSV bits must be 0 unless an extension defines them.
        // No extension of the core gives them a meaning on control frames;
        // extensions above the core see control frames too, with the bits
        // they were given ([`Config::extra_rsv`]), as frames: so only when
        // frames are delivered one by one.
        let allowed = match (h.opcode.is_control(), self.config.assemble) {
            (false, _) => self.allowed_rsv,
            (true, false) => self.config.extra_rsv & 0x7,
            (true, true) => 0,
        };
        if h.rsv & !allowed != 0 {
            return Err(Violation::ReservedBits(h.rsv & !allowed));
        }
        match h.opcode {
            // Section 5.4: fragments of one message are not interleaved.
            OpCode::Continuation if !self.message.in_progress() => return Err(Violation::UnexpectedContinuation),
            OpCode::Text | OpCode::Binary if self.message.in_progress() => return Err(Violation::ExpectedContinuation),
            _ => {}
        }
        // Refuse an oversized frame from its header, before reading (or
        // allocating for) its payload.
        if !h.opcode.is_control() {
            let current = current_size(h.opcode, self.message.size);
            let remaining = self
                .config
                .max_size
                .map(|max| max as u64 - self.message.size.min(max as u64));
            if let Some(max_frame) = self.config.max_frame {
                if h.payload_len > max_frame as u64 {
                    // websockets' limit for the frame: the smaller of the
                    // two, plus what the message holds already.
                    let left = remaining.map_or(max_frame as u64, |r| r.min(max_frame as u64));
                    return Err(Violation::FrameTooBig {
                        size: Some(h.payload_len),
                        current,
                        max_size: (left + current.unwrap_or(0)) as usize,
                    });
                }
            }
            if let (Some(max), Some(remaining)) = (self.config.max_size, remaining) {
                let limit = if h.rsv != 0 && !self.extensions.is_empty() {
                    self.extensions
                        .iter()
                        .fold(remaining as usize, |l, e| e.max_encoded_len(l)) as u64
                } else {
                    remaining
                };
                if h.payload_len > limit {
                    return Err(Violation::FrameTooBig {
                        size: Some(h.payload_len),
                        current,
                        max_size: max,
                    });
                }
            }
        }
        Ok(())
    }

    fn complete_frame(&mut self) {
        let (header, payload, fed, decoding) = match std::mem::replace(&mut self.read, ReadState::Header) {
            ReadState::Payload {
                header,
                buf,
                fed,
                decoding,
                ..
            } => (header, buf, fed, decoding),
            ReadState::Sink { sink, .. } => {
                // A single-frame binary message: no UTF-8 or fragment state
                // to update, and its size passed the limits with the header.
                self.rare().done_sinks.push_back(sink);
                self.events.push(Event::BinarySink);
                return;
            }
            other => {
                self.read = other;
                return;
            }
        };
        if let Err(v) = self.process_frame(header, payload, fed, decoding) {
            self.fail_with(v);
        }
    }

    fn process_frame(
        &mut self,
        h: FrameHeader,
        payload: Vec<u8>,
        fed: bool,
        decoding: Decoding,
    ) -> Result<(), Violation> {
        match h.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => match decoding {
                Decoding::Plain { rsv } => self.process_data(h, payload, fed, Some(rsv)),
                Decoding::Whole => self.process_data(h, payload, fed, None),
                Decoding::Streamed { rsv, start } => self.finish_streamed(h, rsv, payload, start, fed),
            },
            OpCode::Ping => {
                // Section 5.5.2: answer with a pong carrying the same data.
                if self.state == State::Open {
                    if self.hold_pongs {
                        self.rare().held_pong = Some(payload.clone());
                    } else {
                        self.write_control(OpCode::Pong, &payload);
                    }
                }
                self.events.push(control_event(OpCode::Ping, h.rsv, payload));
                Ok(())
            }
            OpCode::Pong => {
                self.events.push(control_event(OpCode::Pong, h.rsv, payload));
                Ok(())
            }
            OpCode::Close => self.process_close(payload, h.rsv),
        }
    }

    /// A complete data frame kept as received: its data with `plain` RSV
    /// bits left, or with `None` to be decoded whole by the extensions now;
    /// `fed` when its text was validated as it arrived. The message was
    /// started with the header of its first frame.
    fn process_data(
        &mut self,
        h: FrameHeader,
        payload: Vec<u8>,
        fed: bool,
        plain: Option<u8>,
    ) -> Result<(), Violation> {
        let mut frame = DataFrame {
            opcode: h.opcode,
            fin: h.fin,
            rsv: h.rsv,
            payload,
        };
        self.extension_activity |= !self.extensions.is_empty();
        match plain {
            Some(rsv) => frame.rsv = rsv,
            None => {
                let remaining = self.message.remaining(self.config.max_size);
                let current = current_size(h.opcode, self.message.size);
                let max_size = self.config.max_size;
                for ext in self.extensions.iter_mut().rev() {
                    ext.decode(&mut frame, remaining)
                        .map_err(|e| frame_too_big(e, current, None, max_size))?;
                }
            }
        }
        let current = current_size(h.opcode, self.message.size);
        self.message
            .account(
                &frame.payload,
                frame.fin,
                self.config.max_size,
                self.config.max_fragments,
                self.utf8_check(fed),
            )
            .map_err(|e| frame_too_big(e, current, Some(frame.payload.len() as u64), self.config.max_size))?;
        if self.config.assemble {
            let single = frame.fin && self.message.buffer.is_empty();
            if self.streams_fragment(frame.fin) {
                self.push_fragment(frame.payload, frame.fin)?;
            } else if single {
                let (opcode, _, utf8_checked) = self.message.finish();
                self.events.push(message_event(opcode, frame.payload, utf8_checked)?);
            } else {
                self.message.buffer.extend_from_slice(&frame.payload);
                if frame.fin {
                    let (opcode, data, utf8_checked) = self.message.finish();
                    self.events.push(message_event(opcode, data, utf8_checked)?);
                }
            }
        } else {
            if frame.fin {
                self.message.finish();
            }
            self.events.push(Event::Frame {
                opcode: frame.opcode,
                fin: frame.fin,
                rsv: frame.rsv,
                payload: frame.payload,
            });
        }
        Ok(())
    }

    /// A complete data frame that the only extension decoded as it arrived
    /// into `buf`, from `start` on (after the message's earlier frames when
    /// assembling); `fed` when its text was validated as it came out.
    fn finish_streamed(
        &mut self,
        h: FrameHeader,
        rsv: u8,
        mut buf: Vec<u8>,
        start: usize,
        fed: bool,
    ) -> Result<(), Violation> {
        self.extension_activity = true;
        let before = buf.len();
        let limit = self
            .message
            .remaining(self.config.max_size)
            .map(|r| r.saturating_sub(before - start));
        let finished = self.extensions[0].finish_frame(&mut DecodeBuf::new(&mut buf), limit);
        // As in read_payload: the bytes decoded are checked first.
        if fed {
            self.message.feed_text(&buf[before..]).map_err(|e| {
                let at = (before - start) as isize + e.position;
                invalid_utf8(self.message.utf8_pending(), &buf[start..], at)
            })?;
        }
        let current = current_size(h.opcode, self.message.size);
        finished.map_err(|v| frame_too_big(v, current, None, self.config.max_size))?;
        let frame_len = (buf.len() - start) as u64;
        self.message
            .account(
                &buf[start..],
                h.fin,
                self.config.max_size,
                self.config.max_fragments,
                self.utf8_check(fed),
            )
            .map_err(|e| frame_too_big(e, current, Some(frame_len), self.config.max_size))?;
        if self.config.assemble && self.streams_fragment(h.fin) {
            // The frame was decoded into a buffer of its own (start_payload
            // never fills the message's buffer in this mode): start is 0.
            buf.drain(..start);
            self.push_fragment(buf, h.fin)?;
        } else if self.config.assemble {
            self.message.buffer = buf;
            if h.fin {
                let (opcode, data, utf8_checked) = self.message.finish();
                self.events.push(message_event(opcode, data, utf8_checked)?);
            }
        } else {
            if h.fin {
                self.message.finish();
            }
            self.events.push(Event::Frame {
                opcode: h.opcode,
                fin: h.fin,
                rsv,
                payload: buf,
            });
        }
        Ok(())
    }

    /// Whether the data frame just accounted for goes out as a fragment
    /// ([`Config::fragments`]): any frame of a message of several frames,
    /// that is, all but a first frame that is also the last.
    fn streams_fragment(&self, fin: bool) -> bool {
        self.config.fragments && !(fin && self.message.fragments == 1)
    }

    /// Hands one frame of a fragmented message to the application, as text
    /// decoded so far or as bytes, and ends the message with its last frame.
    fn push_fragment(&mut self, data: Vec<u8>, fin: bool) -> Result<(), Violation> {
        let event = if self.message.is_text() {
            let data = self
                .message
                .text_fragment(data, fin)
                .map_err(|(bytes, position)| invalid_utf8(&[], &bytes, position))?;
            Event::TextFragment { data, fin }
        } else {
            Event::BinaryFragment { data, fin }
        };
        if fin {
            self.message.finish();
        }
        self.events.push(event);
        Ok(())
    }

    /// How [`MessageState::account`] checks the text of a complete frame:
    /// not at all with `check_text` off, only its end if it was `fed` as it
    /// arrived, the whole frame otherwise.
    fn utf8_check(&self, fed: bool) -> Utf8Check {
        match (self.config.check_text, fed) {
            (false, _) => Utf8Check::Off,
            (true, true) => Utf8Check::Fed,
            (true, false) => Utf8Check::Payload,
        }
    }

    fn process_close(&mut self, payload: Vec<u8>, rsv: u8) -> Result<(), Violation> {
        // Sections 7.1.5 and 7.1.6: the close code and reason.
        let close = CloseFrame::parse(&payload)?;
        self.rare().close_rcvd = Some(close.clone());
        if self.state == State::Closing {
            self.close_rcvd_then_sent = Some(false);
        }
        // Sections 5.4 and 5.5: a control frame may come between the
        // fragments of a message, a close frame too. It ends the connection:
        // the message in progress never completes and is dropped.
        self.message = MessageState::default();
        if self.state == State::Open {
            // Section 5.5.1: echo the status code. Echo the original bytes:
            // an empty payload must stay empty rather than become 1005.
            self.write_control(OpCode::Close, &payload);
            self.rare().close_sent = Some(close);
            self.close_rcvd_then_sent = Some(true);
            self.state = State::Closing;
        }
        self.events.push(control_event(OpCode::Close, rsv, payload));
        // Section 7.1.1: the server closes the TCP connection first; the
        // client waits for it.
        if self.config.role == Role::Server && !self.eof_sent {
            self.send_eof();
        }
        self.read = ReadState::Discard;
        Ok(())
    }

    /// Fails the connection because of the peer (section 7.1.7), at once or,
    /// with [`Config::defer_failure`], when [`Connection::fail_pending`]
    /// says so. Either way reading stops here: the rest of the input is
    /// ignored, and [`Event::Failed`] follows the events found before.
    fn fail_with(&mut self, v: Violation) {
        self.rare().failure = Some(v);
        if self.config.defer_failure {
            self.failure_pending = true;
            self.stop_reading();
        } else {
            self.apply_failure();
        }
        self.events.push(Event::Failed);
    }

    /// Sends what the recorded failure calls for.
    fn apply_failure(&mut self) {
        if let Some(v) = self.failure() {
            let (code, reason) = (v.close_code(), v.to_string());
            self.fail(code, &reason);
        }
    }

    fn stop_reading(&mut self) {
        self.read = ReadState::Discard;
        self.header_buf.clear();
        self.message = MessageState::default();
    }

    // --------------------------------------------------------------- output

    /// Fails the connection (section 7.1.7): sends a close frame with `code`
    /// if the connection is open (not for 1006, which means the network is
    /// gone), closes TCP if this is the server, and ignores further input.
    /// A deferred failure still pending is dropped: this one replaces it.
    pub fn fail(&mut self, code: u16, reason: &str) {
        self.failure_pending = false;
        if self.state == State::Open && code != close_code::ABNORMAL_CLOSURE {
            let close = CloseFrame {
                code,
                reason: truncate_reason(reason).to_owned(),
            };
            let payload = close.serialize();
            self.write_control(OpCode::Close, &payload);
            let rare = self.rare();
            rare.close_sent = Some(close);
            if rare.close_rcvd.is_some() {
                self.close_rcvd_then_sent = Some(true);
            }
            self.state = State::Closing;
        }
        if self.config.role == Role::Server && !self.eof_sent {
            self.send_eof();
        }
        self.stop_reading();
    }

    fn send_eof(&mut self) {
        self.eof_sent = true;
        self.eof_pending = true;
    }

    fn check_open(&self) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::InvalidState(self.state.name()));
        }
        Ok(())
    }

    /// Sends a text frame; `data` must be UTF-8 (the caller encodes a str).
    pub fn send_text(&mut self, data: &[u8], fin: bool) -> Result<(), SendError> {
        self.send_data(OpCode::Text, data, fin)
    }

    /// Sends a binary frame.
    pub fn send_binary(&mut self, data: &[u8], fin: bool) -> Result<(), SendError> {
        self.send_data(OpCode::Binary, data, fin)
    }

    /// Sends a continuation frame of the message being sent.
    pub fn send_continuation(&mut self, data: &[u8], fin: bool) -> Result<(), SendError> {
        self.send_data(OpCode::Continuation, data, fin)
    }

    fn send_data(&mut self, opcode: OpCode, data: &[u8], fin: bool) -> Result<(), SendError> {
        self.send_frame(opcode, data, fin, 0)
    }

    /// Sends a data frame with explicit RSV bits, for extensions implemented
    /// above the core, which encoded `data` already.
    pub fn send_frame(&mut self, opcode: OpCode, data: &[u8], fin: bool, rsv: u8) -> Result<(), SendError> {
        let mask = self.start_data_frame(opcode, fin)?;
        if self.extensions.is_empty() {
            write_frame(&mut self.output, fin, rsv, opcode, data, mask);
        } else {
            self.extension_activity = true;
            let mut frame = DataFrame {
                opcode,
                fin,
                rsv,
                payload: data.to_vec(),
            };
            for ext in self.extensions.iter_mut() {
                ext.encode(&mut frame);
            }
            write_frame(
                &mut self.output,
                frame.fin,
                frame.rsv,
                frame.opcode,
                &frame.payload,
                mask,
            );
        }
        Ok(())
    }

    /// Checks that a data frame may be sent now, records it in the
    /// fragmentation state and picks its masking key.
    fn start_data_frame(&mut self, opcode: OpCode, fin: bool) -> Result<Option<[u8; 4]>, SendError> {
        if opcode.is_control() {
            return Err(SendError::Protocol("send_frame sends data frames only".into()));
        }
        match (opcode, self.expect_continuation) {
            (OpCode::Continuation, false) => return Err(SendError::Protocol("unexpected continuation frame".into())),
            (OpCode::Text | OpCode::Binary, true) => {
                return Err(SendError::Protocol("expected a continuation frame".into()))
            }
            _ => {}
        }
        self.check_open()?;
        self.expect_continuation = !fin;
        Ok(self.next_mask())
    }

    /// Starts a data frame that the caller writes itself, straight into its
    /// own buffer: the payload is then copied once, not into the output
    /// buffer first. Returns the header to write before the payload and the
    /// key to mask the payload with, or `Ok(None)` when the frame must go
    /// through [`Connection::send_frame`] instead (extensions transform
    /// frames, or earlier output is still pending and must go first).
    pub fn begin_frame(&mut self, opcode: OpCode, len: usize, fin: bool) -> Result<Option<FrameStart>, SendError> {
        if !self.extensions.is_empty() || !self.output.is_empty() {
            return Ok(None);
        }
        let mask = self.start_data_frame(opcode, fin)?;
        let mut header = [0u8; 14];
        let mut head = Vec::with_capacity(14);
        crate::frame::write_header(&mut head, fin, 0, opcode, len, mask);
        header[..head.len()].copy_from_slice(&head);
        Ok(Some(FrameStart {
            header,
            header_len: head.len(),
            mask,
        }))
    }

    /// Like [`Connection::begin_frame`], for a payload the caller writes
    /// unchanged right after the header (a server sending a large message
    /// then skips copying it at all). `Ok(None)` also when the payload must
    /// be masked, that is, for clients.
    pub fn begin_plain_frame(
        &mut self,
        opcode: OpCode,
        len: usize,
        fin: bool,
    ) -> Result<Option<FrameStart>, SendError> {
        if self.config.role == Role::Client {
            return Ok(None);
        }
        self.begin_frame(opcode, len, fin)
    }

    /// Sends a ping; allowed while closing too (section 5.5).
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Ping, data)
    }

    /// Sends a pong; allowed while closing too.
    pub fn send_pong(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Pong, data)
    }

    fn send_control(&mut self, opcode: OpCode, data: &[u8]) -> Result<(), SendError> {
        self.send_control_frame(opcode, data, 0)
    }

    /// Sends a ping or a pong with explicit RSV bits, for extensions
    /// implemented above the core, which encoded it already.
    pub fn send_control_frame(&mut self, opcode: OpCode, data: &[u8], rsv: u8) -> Result<(), SendError> {
        if !matches!(opcode, OpCode::Ping | OpCode::Pong) {
            return Err(SendError::Protocol(
                "send_control_frame sends pings and pongs only".into(),
            ));
        }
        if self.state != State::Open && self.state != State::Closing {
            return Err(SendError::InvalidState(self.state.name()));
        }
        if data.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::Protocol(format!(
                "control frame too long: {} bytes",
                data.len()
            )));
        }
        let mask = self.next_mask();
        write_frame(&mut self.output, true, rsv & 0x7, opcode, data, mask);
        Ok(())
    }

    /// Starts the closing handshake (section 7.1.2). `None` sends a close
    /// frame without a status code.
    pub fn send_close(&mut self, code: Option<u16>, reason: &str) -> Result<(), SendError> {
        self.check_open()?;
        let close = match code {
            None if !reason.is_empty() => {
                return Err(SendError::Protocol("cannot send a reason without a code".into()))
            }
            None => CloseFrame {
                code: close_code::NO_STATUS_RCVD,
                reason: String::new(),
            },
            Some(c) if !is_valid_code(c) => return Err(SendError::Protocol(format!("invalid status code {c}"))),
            Some(c) => CloseFrame {
                code: c,
                reason: reason.to_owned(),
            },
        };
        let payload = close.serialize();
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::Protocol(format!(
                "close reason too long: {} bytes",
                reason.len()
            )));
        }
        self.write_control(OpCode::Close, &payload);
        self.rare().close_sent = Some(close);
        self.state = State::Closing;
        Ok(())
    }

    fn write_control(&mut self, opcode: OpCode, payload: &[u8]) {
        let mask = self.next_mask();
        write_frame(&mut self.output, true, 0, opcode, payload, mask);
    }

    /// The masking key of the next frame: none for a server; for a client,
    /// the key set with [`Connection::set_mask_override`], else a random one.
    fn next_mask(&mut self) -> Option<[u8; 4]> {
        match self.config.role {
            Role::Client => {
                let rare = self.rare();
                Some(match rare.mask_override {
                    Some(key) => key,
                    None => rare.masks.next(),
                })
            }
            Role::Server => None,
        }
    }
}

/// The event of a whole message. `utf8_checked` comes from
/// [`MessageState::finish`]: text that was not validated frame by frame
/// (`check_text` off) is checked here, as it becomes a `String` (see
/// [`into_string`]), so that no setting can make the core hand out a
/// `String` that is not UTF-8; invalid text then fails with 1007 as usual.
fn message_event(opcode: OpCode, data: Vec<u8>, utf8_checked: bool) -> Result<Event, Violation> {
    if opcode != OpCode::Text {
        return Ok(Event::Binary(data));
    }
    if utf8_checked {
        // SAFETY: `utf8_checked` says that the message's validator accepted
        // every byte of each of its frames, in order, and its end
        // (MessageState::account, never with Utf8Check::Off). The bytes
        // validated are the payloads as the message holds them: decoded
        // payloads with Utf8Check::Payload (process_data); with
        // Utf8Check::Fed, the bytes fed in receive_data (and, for the last
        // output of a streamed frame, finish_streamed) right after they
        // were appended to the frame's buffer: unmasked by the connection
        // for Decoding::Plain, or appended by the extension through a
        // DecodeBuf, which cannot change bytes already in the buffer, for
        // Decoding::Streamed. `data` is those payloads joined in order
        // (process_data), or the buffer they were appended to in order
        // (finish_streamed), unchanged since.
        return Ok(Event::Text(unsafe { String::from_utf8_unchecked(data) }));
    }
    into_string(data)
        .map(Event::Text)
        .map_err(|(data, e)| invalid_utf8(&[], &data, e.position))
}

/// The event of a control frame: [`Event::Ping`], [`Event::Pong`] or
/// [`Event::Close`], or, when it has RSV bits set (possible only with
/// [`Config::extra_rsv`], in frame mode), an [`Event::Frame`] that keeps
/// them for the extensions above the core to decode.
fn control_event(opcode: OpCode, rsv: u8, payload: Vec<u8>) -> Event {
    match (opcode, rsv) {
        (_, 1..) => Event::Frame {
            opcode,
            fin: true,
            rsv,
            payload,
        },
        (OpCode::Ping, _) => Event::Ping(payload),
        (OpCode::Pong, _) => Event::Pong(payload),
        _ => Event::Close(payload),
    }
}

/// Bytes of the message before a frame with this opcode, as websockets
/// reports them in `PayloadTooBig.current_size`: `None` for the first frame
/// of a message.
fn current_size(opcode: OpCode, message_size: u64) -> Option<u64> {
    (opcode == OpCode::Continuation).then_some(message_size)
}

/// Restates a message over the size limit in websockets' terms (see
/// [`Violation::FrameTooBig`]): the frame's `size` (`None` when an
/// extension stopped decoding at the limit, as websockets' permessage-deflate
/// reports it), the message's bytes before it, and the message's limit.
fn frame_too_big(v: Violation, current: Option<u64>, size: Option<u64>, max_size: Option<usize>) -> Violation {
    match (v, max_size) {
        (Violation::MessageTooBig { .. }, Some(max_size)) => Violation::FrameTooBig {
            size,
            current,
            max_size,
        },
        (other, _) => other,
    }
}

/// Hands the next piece of a frame's payload to the extension decoding it
/// as it arrives. A masked piece is unmasked on the stack, a slice at a
/// time, rather than into a copy of the payload; `offset` is where `chunk`
/// starts in the payload, for the phase of the key. `limit` bounds what the
/// whole chunk may add to `out`.
fn decode_chunk(
    ext: &mut dyn Extension,
    chunk: &[u8],
    mask: Option<[u8; 4]>,
    offset: usize,
    out: &mut DecodeBuf<'_>,
    limit: Option<usize>,
) -> Result<(), Violation> {
    let Some(key) = mask else {
        return ext.decode_chunk(chunk, out, limit);
    };
    let start = out.len();
    // Not zeroed first: extend_masked writes every byte.
    let mut piece = Vec::with_capacity(chunk.len().min(UNMASK_PIECE));
    for (i, masked) in chunk.chunks(UNMASK_PIECE).enumerate() {
        piece.clear();
        extend_masked(&mut piece, masked, key, offset + i * UNMASK_PIECE);
        let left = limit.map(|l| l.saturating_sub(out.len() - start));
        ext.decode_chunk(&piece, out, left)?;
    }
    Ok(())
}

/// Cuts a close reason to the 123 bytes a close frame can carry, at a
/// character boundary.
fn truncate_reason(reason: &str) -> &str {
    const MAX: usize = MAX_CONTROL_PAYLOAD - 2;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests;
