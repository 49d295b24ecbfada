//! A small ESMTP receiver on a loopback port, for testing the SMTP provider
//! against a real exchange: EHLO with capabilities, STARTTLS or implicit TLS,
//! AUTH PLAIN and LOGIN, MAIL/RCPT/DATA, QUIT, and replies scripted per
//! connection (a 451 here, a 550 there, a greeting that never comes).
//!
//! Shared: tocsin-server's API tests include this file too (`#[path]`), for
//! status-page subscriber mail.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// How one connection behaves.
#[derive(Clone)]
pub struct Behaviour {
    /// Offer STARTTLS with this config (or, with `implicit_tls`, speak TLS from the start).
    pub tls: Option<Arc<ServerConfig>>,
    /// TLS from the first byte (port 465 style).
    pub implicit_tls: bool,
    /// The AUTH mechanisms offered, e.g. "PLAIN LOGIN"; none when empty.
    pub auth: &'static str,
    /// Never send the greeting.
    pub hang: bool,
    pub auth_reply: &'static str,
    pub mail_reply: &'static str,
    pub rcpt_reply: &'static str,
    /// The reply after the message's final dot.
    pub data_reply: &'static str,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            tls: None,
            implicit_tls: false,
            auth: "",
            hang: false,
            auth_reply: "235 2.7.0 Authentication successful",
            mail_reply: "250 2.1.0 Ok",
            rcpt_reply: "250 2.1.5 Ok",
            data_reply: "250 2.0.0 Ok: queued as 4Bx9",
        }
    }
}

/// What happened on one connection.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub ehlo: Vec<String>,
    /// Whether the connection was encrypted when the message arrived.
    pub tls: bool,
    /// Mechanism, user, password, and whether it came over TLS.
    pub auth: Option<(String, String, String, bool)>,
    pub mail_from: Option<String>,
    pub rcpt_to: Vec<String>,
    /// The message, dot-unstuffed, without the final dot line.
    pub data: Option<Vec<u8>>,
    pub commands: Vec<String>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    sessions: Arc<Mutex<Vec<Session>>>,
    /// Woken whenever a message arrives (awaited by tocsin-server's tests).
    #[allow(dead_code)]
    arrived: Arc<tokio::sync::Notify>,
}

impl Receiver {
    /// Listens on 127.0.0.1:0; connection n behaves as `script[n]` (the last one repeats).
    pub async fn start(script: Vec<Behaviour>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(tokio::sync::Notify::new());
        let r = Receiver {
            addr,
            sessions: sessions.clone(),
            arrived: arrived.clone(),
        };
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let b = script[n.min(script.len() - 1)].clone();
                n += 1;
                let index = {
                    let mut s = sessions.lock().unwrap();
                    s.push(Session::default());
                    s.len() - 1
                };
                let log = Log {
                    sessions: sessions.clone(),
                    index,
                    arrived: arrived.clone(),
                };
                tokio::spawn(async move {
                    let _ = serve(stream, b, log).await;
                });
            }
        });
        r
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.sessions.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages have arrived (tocsin-server's tests).
    #[allow(dead_code)]
    pub async fn messages(&self, n: usize) {
        loop {
            let arrived = self.arrived.notified();
            let got = self.sessions().iter().filter(|s| s.data.is_some()).count();
            if got >= n {
                return;
            }
            arrived.await;
        }
    }
}

/// The test server's certificate (for 127.0.0.1 and localhost), signed by tests/fixtures/ca.pem.
pub fn tls_config() -> Arc<ServerConfig> {
    // From this crate's tests and from tocsin-server's, which include this file.
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tocsin-notify/tests/fixtures"
    );
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{dir}/server.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/server.key")).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

struct Log {
    sessions: Arc<Mutex<Vec<Session>>>,
    index: usize,
    arrived: Arc<tokio::sync::Notify>,
}

impl Log {
    fn with(&self, f: impl FnOnce(&mut Session)) {
        f(&mut self.sessions.lock().unwrap()[self.index]);
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = BufReader<Box<dyn Io>>;

async fn reply(conn: &mut Conn, text: &str) -> std::io::Result<()> {
    conn.write_all(format!("{text}\r\n").as_bytes()).await?;
    conn.flush().await
}

/// A line without its CRLF; `None` at the end of the stream.
async fn line(conn: &mut Conn) -> std::io::Result<Option<String>> {
    let mut buf = String::new();
    if conn.read_line(&mut buf).await? == 0 {
        return Ok(None);
    }
    Ok(Some(buf.trim_end_matches(['\r', '\n']).to_string()))
}

async fn serve(stream: TcpStream, b: Behaviour, log: Log) -> std::io::Result<()> {
    let mut tls = false;
    let mut conn: Conn = if b.implicit_tls {
        let acceptor = TlsAcceptor::from(b.tls.clone().expect("implicit TLS needs a config"));
        tls = true;
        BufReader::new(Box::new(acceptor.accept(stream).await?))
    } else {
        BufReader::new(Box::new(stream))
    };
    if b.hang {
        // Say nothing; wait for the client to give up and hang up.
        while line(&mut conn).await?.is_some() {}
        return Ok(());
    }
    reply(&mut conn, "220 receiver.test ESMTP ready").await?;
    while let Some(cmd) = line(&mut conn).await? {
        log.with(|s| s.commands.push(cmd.clone()));
        let upper = cmd.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("").to_string();
        match verb.as_str() {
            "EHLO" => {
                log.with(|s| s.ehlo.push(cmd[5..].to_string()));
                let mut caps = vec!["250-receiver.test".to_string()];
                if b.tls.is_some() && !tls {
                    caps.push("250-STARTTLS".into());
                }
                if !b.auth.is_empty() {
                    caps.push(format!("250-AUTH {}", b.auth));
                }
                caps.push("250 8BITMIME".into());
                reply(&mut conn, &caps.join("\r\n")).await?;
            }
            "HELO" => reply(&mut conn, "250 receiver.test").await?,
            "STARTTLS" if b.tls.is_some() && !tls => {
                reply(&mut conn, "220 2.0.0 Ready to start TLS").await?;
                let acceptor = TlsAcceptor::from(b.tls.clone().unwrap());
                let plain = conn.into_inner();
                conn = BufReader::new(Box::new(acceptor.accept(plain).await?));
                tls = true;
            }
            "AUTH" => {
                let args: Vec<&str> = cmd.split(' ').skip(1).collect();
                let mech = args.first().copied().unwrap_or("").to_ascii_uppercase();
                let (user, pass) = match mech.as_str() {
                    "PLAIN" => {
                        let encoded = match args.get(1) {
                            Some(e) => e.to_string(),
                            None => {
                                reply(&mut conn, "334 ").await?;
                                line(&mut conn).await?.unwrap_or_default()
                            }
                        };
                        let raw = String::from_utf8(B64.decode(encoded).unwrap()).unwrap();
                        let mut parts = raw.split('\0').skip(1);
                        (
                            parts.next().unwrap_or("").to_string(),
                            parts.next().unwrap_or("").to_string(),
                        )
                    }
                    "LOGIN" => {
                        let user = match args.get(1) {
                            Some(e) => e.to_string(),
                            None => {
                                reply(&mut conn, "334 VXNlcm5hbWU6").await?;
                                line(&mut conn).await?.unwrap_or_default()
                            }
                        };
                        reply(&mut conn, "334 UGFzc3dvcmQ6").await?;
                        let pass = line(&mut conn).await?.unwrap_or_default();
                        let d = |s: String| String::from_utf8(B64.decode(s).unwrap()).unwrap();
                        (d(user), d(pass))
                    }
                    _ => {
                        reply(&mut conn, "504 5.5.4 Unrecognized authentication type").await?;
                        continue;
                    }
                };
                log.with(|s| s.auth = Some((mech.clone(), user, pass, tls)));
                reply(&mut conn, b.auth_reply).await?;
            }
            "MAIL" => {
                log.with(|s| s.mail_from = Some(cmd.clone()));
                reply(&mut conn, b.mail_reply).await?;
            }
            "RCPT" => {
                log.with(|s| s.rcpt_to.push(cmd.clone()));
                reply(&mut conn, b.rcpt_reply).await?;
            }
            "DATA" => {
                reply(&mut conn, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if conn.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" {
                        break;
                    }
                    // Dot-stuffing: a leading dot was doubled by the client.
                    let raw = if raw.starts_with(b"..") {
                        &raw[1..]
                    } else {
                        &raw[..]
                    };
                    data.extend_from_slice(raw);
                }
                log.with(|s| {
                    s.data = Some(data);
                    s.tls = tls;
                });
                log.arrived.notify_waiters();
                reply(&mut conn, b.data_reply).await?;
            }
            "RSET" | "NOOP" => reply(&mut conn, "250 2.0.0 Ok").await?,
            "QUIT" => {
                reply(&mut conn, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut conn, "502 5.5.2 Command not recognized").await?,
        }
    }
    Ok(())
}
