//! The SMTP listener: a small, strict ESMTP receiver (RFC 5321) that turns mail to
//! `<integration-key>@<any domain>` into an alert on that key's service.
//!
//! Like every source it only parses and submits: the message goes through
//! `tocsin_ingest::email::parse` and the same group-commit writer as the HTTP
//! sources, and `250` after DATA means the alert is committed. A store failure
//! answers `451`, so the sending MTA keeps the message and retries. Plain SMTP
//! only: put a relay (Postfix, an MTA of the mail provider) in front for TLS.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tocsin_core::model::IntegrationKey;
use tocsin_ingest::email::{self, EmailOptions};
use tocsin_store::{Inbound, StoreError};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::state::AppState;

/// What the listener allows.
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    /// The name it greets with.
    pub hostname: String,
    /// Largest message, bytes (advertised as SIZE; larger ones get 552).
    pub max_message_bytes: usize,
    /// Connections served at once; more get 421.
    pub max_connections: usize,
    /// Recipients (integration keys) per message.
    pub max_recipients: usize,
    /// How long to wait for a command or a line of data before closing with 421.
    pub command_timeout: Duration,
    /// Longest a whole session may last, however busy; then 421.
    pub session_timeout: Duration,
    /// Connections served at once from one address.
    pub max_connections_per_ip: usize,
    /// Bytes of message data all sessions together may hold; a message that would
    /// go over is answered 452 (try again later), so many large mails at once
    /// cannot exhaust memory.
    pub memory_budget: usize,
    /// How messages become alerts.
    pub email: EmailOptions,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            hostname: "tocsin".into(),
            max_message_bytes: 4 * 1024 * 1024,
            max_connections: 100,
            max_recipients: 20,
            command_timeout: Duration::from_secs(300),
            session_timeout: Duration::from_secs(1800),
            max_connections_per_ip: 10,
            memory_budget: 64 * 1024 * 1024,
            email: EmailOptions::default(),
        }
    }
}

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
const MAX_COMMAND: usize = 512;
/// Bad commands before the connection is closed.
const MAX_ERRORS: usize = 20;
/// Commands one session may send (a session delivering many mails needs a few per mail).
const MAX_COMMANDS: usize = 2000;
/// Longest line of message data kept; RFC 5321 allows 1000 octets, real mail sometimes more.
const MAX_DATA_LINE: usize = 64 * 1024;

/// Accepts connections until `shutdown` changes (or its sender is dropped);
/// connections already open finish their session.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    opts: SmtpOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let opts = Arc::new(opts);
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let budget = Arc::new(Semaphore::new(opts.memory_budget));
    let per_ip: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            // A dropped sender also means stop.
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "smtp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (state, opts, budget) = (state.clone(), opts.clone(), budget.clone());
        let ip = peer.ip();
        let from_ip = {
            let mut m = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(ip).or_insert(0);
            *n += 1;
            *n
        };
        // Given back when dropped, whichever way the session ends (a panic included).
        let ip_slot = IpSlot {
            per_ip: per_ip.clone(),
            ip,
        };
        if from_ip > opts.max_connections_per_ip {
            drop(ip_slot);
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = stream
                    .write_all(
                        b"421 4.7.0 Too many connections from your address, try again later\r\n",
                    )
                    .await;
            });
            continue;
        }
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    let mut stream = stream;
                    let session = Session::new(state, opts.clone(), budget);
                    // Every read is bounded by the session's deadline and every write by
                    // WRITE_TIMEOUT, so a session ends on its own; never in the middle of
                    // storing an alert the peer has not heard about.
                    if let Err(e) = session.run(&mut stream).await {
                        tracing::debug!(%peer, error = %e, "smtp connection ended");
                    }
                    // The slots are free before the peer sees the connection close.
                    drop(permit);
                    drop(ip_slot);
                    drop(stream);
                });
            }
            Err(_) => {
                drop(ip_slot);
                tokio::spawn(async move {
                    let mut stream = stream;
                    let _ = stream
                        .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                        .await;
                });
            }
        }
    }
}

// One connection counted against its address; the count goes down on drop.
struct IpSlot {
    per_ip: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Longest wait for the peer to take a reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

enum Read {
    Complete,
    TooLong,
    Eof,
}

// Reads one line into `out` (CRLF kept), keeping at most `max` bytes; the rest of
// a longer line is read and dropped.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Read> {
    out.clear();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Read::Eof);
        }
        let (n, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if out.len() + n > max {
            too_long = true;
        } else if !too_long {
            out.extend_from_slice(&buf[..n]);
        }
        r.consume(n);
        if done {
            return Ok(if too_long {
                Read::TooLong
            } else {
                Read::Complete
            });
        }
    }
}

// The address inside `<…>` after `FROM:` / `TO:`, and the parameters after it.
fn path_arg<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((&rest[..end], rest[end + 1..].trim()))
}

#[derive(Default)]
struct Envelope {
    from: Option<String>,
    keys: Vec<IntegrationKey>,
}

struct Session {
    state: AppState,
    opts: Arc<SmtpOptions>,
    greeted: bool,
    env: Envelope,
    errors: usize,
    commands: usize,
    budget: Arc<Semaphore>,
    deadline: tokio::time::Instant,
}

impl Session {
    fn new(state: AppState, opts: Arc<SmtpOptions>, budget: Arc<Semaphore>) -> Session {
        let deadline = tokio::time::Instant::now() + opts.session_timeout;
        Session {
            state,
            opts,
            greeted: false,
            env: Envelope::default(),
            errors: 0,
            commands: 0,
            deadline,
            budget,
        }
    }

    // How long the next read may wait: the command timeout, cut short by the
    // session's deadline; None once the deadline has passed.
    fn read_wait(&self) -> Option<Duration> {
        let left = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        (!left.is_zero()).then(|| left.min(self.opts.command_timeout))
    }

    async fn run(mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        let (r, mut w) = stream.split();
        let mut r = BufReader::new(r);
        let host = self.opts.hostname.clone();
        reply(&mut w, &format!("220 {host} Tocsin ESMTP ready")).await?;
        let mut line = Vec::with_capacity(MAX_COMMAND);
        loop {
            let Some(wait) = self.read_wait() else {
                reply(&mut w, "421 4.4.2 Session time limit reached, closing").await?;
                return Ok(());
            };
            let read = tokio::time::timeout(wait, read_line(&mut r, &mut line, MAX_COMMAND)).await;
            let answer = match read {
                Err(_) => {
                    reply(&mut w, "421 4.4.2 Timeout waiting for a command, closing").await?;
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Read::Eof)) => return Ok(()),
                Ok(Ok(Read::TooLong)) => "500 5.5.2 Line too long".to_string(),
                Ok(Ok(Read::Complete)) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\r', '\n']);
                    let (verb, arg) = match text.split_once(' ') {
                        Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
                        None => (text.to_ascii_uppercase(), ""),
                    };
                    match verb.as_str() {
                        "QUIT" => {
                            reply(&mut w, &format!("221 2.0.0 {host} closing")).await?;
                            return Ok(());
                        }
                        "DATA" => match self.data_allowed() {
                            Err(refusal) => refusal,
                            Ok(()) => {
                                reply(&mut w, "354 End data with <CR><LF>.<CR><LF>").await?;
                                match self.data(&mut r).await? {
                                    Some(answer) => answer,
                                    None => {
                                        reply(
                                            &mut w,
                                            "421 4.4.2 Timeout waiting for data, closing",
                                        )
                                        .await?;
                                        return Ok(());
                                    }
                                }
                            }
                        },
                        _ => self.command(&verb, arg).await,
                    }
                }
            };
            if answer.starts_with('5') {
                self.errors += 1;
            }
            self.commands += 1;
            reply(&mut w, &answer).await?;
            if self.errors >= MAX_ERRORS {
                reply(&mut w, "421 4.7.0 Too many errors, closing").await?;
                return Ok(());
            }
            if self.commands >= MAX_COMMANDS {
                reply(&mut w, "421 4.7.0 Too many commands, closing").await?;
                return Ok(());
            }
        }
    }

    async fn command(&mut self, verb: &str, arg: &str) -> String {
        let host = &self.opts.hostname;
        match verb {
            "EHLO" | "HELO" if arg.is_empty() => "501 5.5.4 A domain or address is required".into(),
            "EHLO" => {
                self.greeted = true;
                self.env = Envelope::default();
                format!(
                    "250-{host} greets {arg}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES",
                    self.opts.max_message_bytes
                )
            }
            "HELO" => {
                self.greeted = true;
                self.env = Envelope::default();
                format!("250 {host}")
            }
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg).await,
            "RSET" => {
                self.env = Envelope::default();
                "250 2.0.0 Reset".into()
            }
            "NOOP" => "250 2.0.0 OK".into(),
            "VRFY" | "EXPN" => {
                "502 5.5.1 Not supported: send to <integration-key>@any-domain".into()
            }
            "HELP" => {
                "214 2.0.0 Send mail to <integration-key>@any-domain; it becomes an alert".into()
            }
            _ => "500 5.5.1 Command not recognized".into(),
        }
    }

    fn mail(&mut self, arg: &str) -> String {
        if !self.greeted {
            return "503 5.5.1 Say EHLO or HELO first".into();
        }
        if self.env.from.is_some() {
            return "503 5.5.1 Sender already given".into();
        }
        let Some((from, params)) = path_arg(arg, "FROM:") else {
            return "501 5.5.4 Syntax: MAIL FROM:<address>".into();
        };
        for p in params.split_whitespace() {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            if name.eq_ignore_ascii_case("SIZE") {
                match value.parse::<usize>() {
                    Ok(n) if n > self.opts.max_message_bytes => {
                        return format!(
                            "552 5.3.4 Message size exceeds the limit of {} bytes",
                            self.opts.max_message_bytes
                        )
                    }
                    Ok(_) => {}
                    Err(_) => return "501 5.5.4 SIZE needs a number".into(),
                }
            }
        }
        self.env.from = Some(from.to_string());
        "250 2.1.0 OK".into()
    }

    async fn rcpt(&mut self, arg: &str) -> String {
        if self.env.from.is_none() {
            return "503 5.5.1 Need MAIL before RCPT".into();
        }
        let Some((to, _)) = path_arg(arg, "TO:") else {
            return "501 5.5.4 Syntax: RCPT TO:<integration-key@domain>".into();
        };
        if self.env.keys.len() >= self.opts.max_recipients {
            return "452 4.5.3 Too many recipients".into();
        }
        // A source route (`@a,@b:key@x`) is ignored, as RFC 5321 allows.
        let to = to.rsplit(':').next().unwrap_or(to);
        let local = to.rsplit_once('@').map(|(l, _)| l).unwrap_or(to);
        let local = local.trim_matches('"').to_ascii_lowercase();
        match self.state.store.integration_key_by_secret(&local).await {
            Ok(Some(key)) => {
                if !self.env.keys.iter().any(|k| k.id == key.id) {
                    self.env.keys.push(key);
                }
                "250 2.1.5 OK".into()
            }
            Ok(None) => "550 5.1.1 No such integration key".into(),
            Err(e) => {
                tracing::error!(error = %e, "smtp: integration key lookup failed");
                "451 4.3.0 Temporary failure, try again later".into()
            }
        }
    }

    fn data_allowed(&self) -> Result<(), String> {
        if self.env.from.is_none() {
            return Err("503 5.5.1 Need MAIL before DATA".into());
        }
        if self.env.keys.is_empty() {
            return Err("503 5.5.1 Need RCPT before DATA".into());
        }
        Ok(())
    }

    // Reads the message up to the lone dot and submits it; None: timed out.
    async fn data<R: AsyncBufRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> std::io::Result<Option<String>> {
        let max = self.opts.max_message_bytes;
        let mut message = Vec::new();
        let mut line = Vec::new();
        let mut oversize = false;
        // Bytes of the shared memory budget this message holds; given back on return.
        let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
        let mut over_budget = false;
        // Whether the previous line ended in CRLF (the DATA command's did).
        let mut after_crlf = true;
        loop {
            let Some(wait) = self.read_wait() else {
                return Ok(None);
            };
            let read =
                tokio::time::timeout(wait, read_line(r, &mut line, MAX_DATA_LINE.min(max) + 2))
                    .await;
            match read {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Read::Eof)) => {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                Ok(Ok(Read::TooLong)) => {
                    oversize = true;
                    after_crlf = line.ends_with(b"\r\n");
                }
                Ok(Ok(Read::Complete)) => {
                    // Only CRLF.CRLF ends the data: a dot after or before a bare LF is
                    // content, so mail cannot be smuggled past a relay that reads it
                    // differently.
                    let crlf = line.ends_with(b"\r\n");
                    if after_crlf && line == b".\r\n" {
                        break;
                    }
                    after_crlf = crlf;
                    // Dot-unstuffing (RFC 5321 §4.5.2).
                    let content = line.strip_prefix(b".").unwrap_or(&line);
                    if message.len() + content.len() > max {
                        oversize = true;
                    } else if !oversize && !over_budget {
                        // The budget is charged for what the buffer allocates, not
                        // just what it holds: grow it explicitly, doubling, up to the limit.
                        let need = message.len() + content.len();
                        if need > message.capacity() {
                            let grow_to = (message.capacity() * 2).max(need).min(max);
                            let extra = grow_to - message.capacity();
                            match self.budget.clone().try_acquire_many_owned(extra as u32) {
                                Ok(p) => {
                                    match held.as_mut() {
                                        Some(h) => h.merge(p),
                                        None => held = Some(p),
                                    }
                                    message.reserve_exact(grow_to - message.len());
                                }
                                Err(_) => over_budget = true,
                            }
                        }
                        if !over_budget {
                            message.extend_from_slice(content);
                        }
                    }
                }
            }
        }
        let answer = if oversize {
            format!("552 5.3.4 Message size exceeds the limit of {max} bytes")
        } else if over_budget {
            "452 4.3.1 Insufficient system storage, try again later".to_string()
        } else {
            self.deliver(&message).await
        };
        drop(held);
        self.env = Envelope::default();
        Ok(Some(answer))
    }

    async fn deliver(&self, message: &[u8]) -> String {
        let event = match email::parse(message, &self.opts.email) {
            Ok(e) => e,
            Err(e) => {
                return format!(
                    "554 5.6.0 Message not understood: {}: {}",
                    e.field, e.message
                )
            }
        };
        // The store keeps a bounded raw payload; copy no more than that per recipient.
        let raw = if message.len() > tocsin_store::MAX_RAW {
            format!(
                "{}… [truncated from {} bytes]",
                String::from_utf8_lossy(&message[..tocsin_store::MAX_RAW]),
                message.len()
            )
        } else {
            String::from_utf8_lossy(message).into_owned()
        };
        // Every recipient's rate limit first, so a limited one does not leave the
        // others committed while the sender is told to retry the whole mail.
        let now = self.state.now();
        for key in &self.env.keys {
            if let Err(wait) =
                self.state
                    .limiter
                    .charge(self.state.limits.ingest_rate, key.id, 1, now)
            {
                return format!(
                    "451 4.7.0 Too many alerts for this integration, retry in {wait} s"
                );
            }
        }
        for key in &self.env.keys {
            let inbound = Inbound::new(key, event.clone(), raw.clone());
            match self.state.alerts.submit(key.clone(), vec![inbound]).await {
                Ok(_) => {}
                Err(StoreError::Invalid(i)) => {
                    return format!("554 5.6.0 Refused: {}: {}", i.field, i.message)
                }
                Err(e) => {
                    tracing::error!(error = %e, "smtp: alert not committed");
                    return "451 4.3.0 Not stored, try again later".into();
                }
            }
        }
        tracing::info!(
            dedup_key = event.dedup_key.as_str(),
            recipients = self.env.keys.len(),
            "alert received by email"
        );
        format!(
            "250 2.0.0 OK: alert {}",
            event
                .dedup_key
                .as_str()
                .chars()
                .take(100)
                .collect::<String>()
        )
    }
}

async fn reply<W: AsyncWrite + Unpin>(w: &mut W, text: &str) -> std::io::Result<()> {
    let mut out = String::with_capacity(text.len() + 2);
    out.push_str(text);
    out.push_str("\r\n");
    // A peer that stops reading is dropped rather than holding its slot.
    tokio::time::timeout(WRITE_TIMEOUT, w.write_all(out.as_bytes()))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_from_their_brackets() {
        assert_eq!(
            path_arg("FROM:<a@x> SIZE=10", "FROM:"),
            Some(("a@x", "SIZE=10"))
        );
        assert_eq!(path_arg("from: <>", "FROM:"), Some(("", "")));
        assert_eq!(path_arg("TO:<k@x>", "TO:"), Some(("k@x", "")));
        assert_eq!(path_arg("TO:k@x", "TO:"), None);
        assert_eq!(path_arg("T", "TO:"), None);
    }

    #[tokio::test]
    async fn long_lines_are_dropped_whole() {
        let input: &[u8] = b"short\r\nxxxxxxxxxxxxxxxxxxxx\r\nnext\r\n";
        let mut r = BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut line, 10).await.unwrap(),
            Read::Complete
        ));
        assert_eq!(line, b"short\r\n");
        assert!(matches!(
            read_line(&mut r, &mut line, 10).await.unwrap(),
            Read::TooLong
        ));
        assert!(matches!(
            read_line(&mut r, &mut line, 10).await.unwrap(),
            Read::Complete
        ));
        assert_eq!(line, b"next\r\n");
        assert!(matches!(
            read_line(&mut r, &mut line, 10).await.unwrap(),
            Read::Eof
        ));
    }
}
