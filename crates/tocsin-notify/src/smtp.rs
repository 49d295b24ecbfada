//! Email over SMTP: one connection per message to a configured relay, STARTTLS
//! or implicit TLS (never silently in clear), the mail built by [`crate::email`].

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use tocsin_core::Invalid;

use crate::classify::SendError;
use crate::email::{self, Mail};
use crate::{BoxFuture, Outgoing, Provider, Sent};

/// How long one delivery may take unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable the password may come from instead of the config file.
pub const PASSWORD_ENV: &str = "TOCSIN_SMTP_PASSWORD";

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, refusing a relay that does not offer it (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption at all, for a relay on the same host or network (port 25).
    None,
}

impl Security {
    /// The usual port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }
}

/// `[notify.smtp]`: the relay every email goes through.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name (also the name its certificate must carry).
    pub host: String,
    /// The relay's port; by default the usual one for `security`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub security: Security,
    /// The login, when the relay wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// The password for `username` (or from `TOCSIN_SMTP_PASSWORD`).
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, a mailbox: `Tocsin <tocsin@example.com>`.
    pub from: String,
    /// How long one delivery may take, connecting included, in seconds.
    #[serde(
        rename = "timeout_seconds",
        default = "default_timeout",
        deserialize_with = "crate::http::timeout_seconds"
    )]
    pub timeout: Duration,
    /// A PEM file of extra CA certificates to trust (a private relay's own CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The name given in EHLO; by default the address literal `[127.0.0.1]`.
    #[serde(default)]
    pub hello_name: Option<String>,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

impl SmtpConfig {
    /// A config for `host` sending as `from`, everything else default.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        SmtpConfig {
            host: host.into(),
            port: None,
            security: Security::default(),
            username: None,
            password: None,
            from: from.into(),
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
            hello_name: None,
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("hello_name", &self.hello_name)
            .finish()
    }
}

/// Sends [`Outgoing`] messages as email through one SMTP relay.
pub struct SmtpProvider {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    security: Security,
    endpoint: String,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpProvider")
            .field("endpoint", &self.endpoint)
            .field("security", &self.security)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpProvider {
    /// A provider for `config`. A bad value is an error naming its key: an
    /// unparsable `from`, an empty `host`, a `username` without `password`, a
    /// `ca_file` that cannot be read or holds no certificate.
    pub fn new(config: SmtpConfig) -> Result<Self, Invalid> {
        let host = config.host.trim().to_string();
        if host.is_empty() {
            return Err(Invalid::new(
                "host",
                "the SMTP relay's host name is required",
            ));
        }
        let from: Mailbox = config.from.trim().parse().map_err(|e| {
            Invalid::new(
                "from",
                format!("not a mailbox like `Tocsin <tocsin@example.com>`: {e}"),
            )
        })?;
        if config.timeout.is_zero() {
            return Err(Invalid::new("timeout_seconds", "must be more than zero"));
        }
        let port = config.port.unwrap_or(config.security.default_port());
        if port == 0 {
            return Err(Invalid::new("port", "must be 1 to 65535"));
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(config.timeout));
        if config.security != Security::None {
            let mut params = TlsParameters::builder(host.clone());
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    Invalid::new("ca_file", format!("cannot read {}: {e}", path.display()))
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    Invalid::new(
                        "ca_file",
                        format!("{} holds no PEM certificate: {e}", path.display()),
                    )
                })?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| Invalid::new("host", format!("cannot set up TLS: {e}")))?;
            builder = builder.tls(match config.security {
                Security::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        match (config.username, config.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user, password));
            }
            (Some(_), None) => {
                return Err(Invalid::new(
                    "password",
                    format!("`username` is set but no password (set `password` or {PASSWORD_ENV})"),
                ))
            }
            (None, Some(_)) => {
                return Err(Invalid::new(
                    "username",
                    "`password` is set but no username",
                ))
            }
            (None, None) => {}
        }
        if let Some(name) = config.hello_name {
            let name = name.trim().to_string();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(Invalid::new("hello_name", "a host name without spaces"));
            }
            builder = builder.hello_name(ClientId::Domain(name));
        }
        Ok(SmtpProvider {
            transport: builder.build(),
            from,
            security: config.security,
            endpoint: format!("{host}:{port}"),
            timeout: config.timeout,
        })
    }

    /// How long one delivery may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends a mail that is not a page (status-page subscriber mail) to `to`, once.
    pub async fn send_mail(&self, to: &str, mail: &Mail) -> Result<Sent, SendError> {
        let to = mailbox(to)?;
        let built = email::build_mail(mail, &self.from, to)
            .map_err(|e| SendError::bad_address(format!("cannot build the mail: {e}")))?;
        self.transmit(built, &mail.idempotency_key).await
    }

    async fn deliver(&self, out: &Outgoing) -> Result<Sent, SendError> {
        let to = mailbox(&out.recipient.target)?;
        let mail = email::build(out, &self.from, to)
            .map_err(|e| SendError::bad_address(format!("cannot build the mail: {e}")))?;
        self.transmit(mail, &out.idempotency_key).await
    }

    async fn transmit(
        &self,
        mail: lettre::Message,
        idempotency_key: &str,
    ) -> Result<Sent, SendError> {
        let message_id = email::message_id(idempotency_key, self.from.email.domain());
        // lettre bounds only the connect with its timeout; a relay that accepts
        // and then says nothing would hold the delivery worker forever.
        let response = tokio::time::timeout(self.timeout, self.transport.send(mail))
            .await
            .map_err(|_| self.no_answer())?
            .map_err(|e| self.classify(&e))?;
        Ok(Sent {
            provider_id: Some(message_id),
            status: u16::from(response.code()),
        })
    }

    fn no_answer(&self) -> SendError {
        SendError::Retryable {
            reason: format!(
                "{} did not answer within {} ms",
                self.endpoint,
                self.timeout.as_millis()
            ),
            retry_after: None,
        }
    }

    /// 4xx replies and failures to reach or talk to the relay are worth another
    /// try; 5xx replies (an unknown mailbox, rejected credentials) and refusals
    /// of our own (no STARTTLS, no common AUTH mechanism) are not.
    fn classify(&self, err: &lettre::transport::smtp::Error) -> SendError {
        if let Some(code) = err.status() {
            let said = std::error::Error::source(err)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let said = said.lines().next().unwrap_or("").trim();
            let reason = format!("{} answered {code}: {said}", self.endpoint)
                .trim_end_matches([':', ' '])
                .to_string();
            return if err.is_transient() {
                SendError::Retryable {
                    reason,
                    retry_after: None,
                }
            } else {
                SendError::Permanent {
                    status: Some(u16::from(code)),
                    reason,
                }
            };
        }
        if err.is_timeout() {
            return self.no_answer();
        }
        let detail = chain(err);
        if err.is_client() {
            let reason = if detail.contains("STARTTLS") {
                format!(
                    "{} does not offer STARTTLS; not sending in clear (security = \"starttls\")",
                    self.endpoint
                )
            } else {
                format!("cannot send through {}: {detail}", self.endpoint)
            };
            return SendError::Permanent {
                status: None,
                reason,
            };
        }
        SendError::Retryable {
            reason: format!("could not deliver to {}: {detail}", self.endpoint),
            retry_after: None,
        }
    }
}

fn mailbox(address: &str) -> Result<Mailbox, SendError> {
    let target = address.trim();
    target
        .parse()
        .map_err(|e| SendError::bad_address(format!("`{target}` is not an email address: {e}")))
}

impl Provider for SmtpProvider {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.deliver(out))
    }
}

// lettre's kinds say little ("network error"); the cause is in the sources,
// some of which its own message already repeats.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<SmtpProvider, Invalid>) -> String {
        r.map(|_| ()).unwrap_err().field
    }

    #[test]
    fn configuration_is_checked_and_names_the_key() {
        let ok = SmtpConfig::new("smtp.example.com", "Tocsin <tocsin@example.com>");
        assert!(SmtpProvider::new(ok.clone()).is_ok());
        assert_eq!(
            field(SmtpProvider::new(SmtpConfig {
                from: "not a mailbox".into(),
                ..ok.clone()
            })),
            "from"
        );
        assert_eq!(
            field(SmtpProvider::new(SmtpConfig {
                host: " ".into(),
                ..ok.clone()
            })),
            "host"
        );
        assert_eq!(
            field(SmtpProvider::new(SmtpConfig {
                username: Some("u".into()),
                ..ok.clone()
            })),
            "password"
        );
        assert_eq!(
            field(SmtpProvider::new(SmtpConfig {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..ok.clone()
            })),
            "ca_file"
        );
        assert_eq!(
            field(SmtpProvider::new(SmtpConfig {
                timeout: Duration::ZERO,
                ..ok
            })),
            "timeout_seconds"
        );
    }

    #[test]
    fn config_file_section_reads_with_defaults() {
        let c: SmtpConfig = toml_like(
            r#"{"host":"mail.example.com","from":"Tocsin <t@example.com>","password":"pw","username":"u"}"#,
        );
        assert_eq!(c.security, Security::Starttls);
        assert_eq!(c.port, None);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        let c: SmtpConfig = toml_like(
            r#"{"host":"h","from":"t@example.com","security":"tls","timeout_seconds":5}"#,
        );
        assert_eq!(c.security.default_port(), 465);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(
            serde_json::from_str::<SmtpConfig>(r#"{"host":"h","from":"f@x.y","tls":true}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<SmtpConfig>(
            r#"{"host":"h","from":"f@x.y","security":"ssl"}"#
        )
        .is_err());
    }

    fn toml_like(json: &str) -> SmtpConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn debug_output_hides_the_password() {
        let mut c = SmtpConfig::new("h", "t@example.com");
        c.username = Some("user".into());
        c.password = Some("hunter2-secret".into());
        assert!(!format!("{c:?}").contains("hunter2"));
        let p = SmtpProvider::new(c).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
