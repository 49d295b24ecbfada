//! Outgoing HTTP for workflow steps, and the `http` step.
//!
//! Every request is checked against the [`NetPolicy`] on the addresses it
//! will actually connect to: the client resolves names through a resolver
//! that refuses a name when any address it resolves to is refused, and
//! connects only to those checked addresses (so a name that resolves to a
//! public address when checked cannot reach 127.0.0.1 when connected to).
//! IP literals are checked as they are. Redirects are not followed: a 3xx is
//! the answer, and a step that expects it says so. Response bodies are read
//! up to a cap. The integrations (Jira, GitHub, Slack, Zoom) send through the
//! same [`Outbound`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::{json, Map, Value};
use tocsin_core::workflow::action::{retryable_status, Method};
use tocsin_core::workflow::{Action, NetPolicy, TargetUrl};
use tocsin_notify::BoxFuture;

use super::executor::{StepCall, StepError, StepExecutor};

/// Largest response body read by default.
pub const DEFAULT_MAX_RESPONSE: usize = 1024 * 1024;

// Resolves names and refuses any whose addresses the policy refuses.
struct CheckedResolver(Arc<NetPolicy>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
            policy
                .check_resolved(&host, &ips)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// One request.
pub struct OutboundRequest<'a> {
    /// Method.
    pub method: Method,
    /// Absolute http(s) URL.
    pub url: &'a str,
    /// Headers.
    pub headers: &'a BTreeMap<String, String>,
    /// Body, if any.
    pub body: Option<&'a str>,
    /// How long to wait for the whole answer.
    pub timeout: Duration,
    /// Sent as `Idempotency-Key` unless `headers` has one.
    pub idempotency_key: &'a str,
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundResponse {
    /// Status.
    pub status: u16,
    /// Headers (lower-case names; repeated ones joined with `, `).
    pub headers: Map<String, Value>,
    /// The body: JSON when it parses as JSON, else text.
    pub body: Value,
}

/// The guarded HTTP client.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: Arc<NetPolicy>,
    max_response: usize,
}

impl Outbound {
    /// A client under `policy` reading at most `max_response` bytes of a body.
    pub fn new(policy: NetPolicy, max_response: usize) -> Outbound {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
            .user_agent(tocsin_notify::USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Outbound {
            client,
            policy,
            max_response,
        }
    }

    /// Checks where a URL would connect: its shape, then the addresses its
    /// host resolves to (the resolver checks them again when connecting).
    pub async fn check(&self, url: &str) -> Result<(), StepError> {
        let target = TargetUrl::parse("url", url).map_err(|e| StepError::permanent(e.message))?;
        let ips: Vec<IpAddr> = match target.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|e| StepError::retryable(format!("cannot resolve {}: {e}", target.host)))?
                .map(|a| a.ip())
                .collect(),
        };
        self.policy
            .check_resolved(&target.host, &ips)
            .map_err(|e| StepError::permanent(format!("refused by the outgoing HTTP policy: {e}")))
    }

    /// Sends one request and reads the answer (any status).
    pub async fn send(&self, req: &OutboundRequest<'_>) -> Result<OutboundResponse, StepError> {
        self.check(req.url).await?;
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
        };
        let mut b = self.client.request(method, req.url).timeout(req.timeout);
        let mut has_key = false;
        for (k, v) in req.headers {
            has_key |= k.eq_ignore_ascii_case("idempotency-key");
            b = b.header(k.as_str(), v.as_str());
        }
        if !has_key {
            b = b.header("Idempotency-Key", req.idempotency_key);
        }
        if let Some(body) = req.body {
            if !req
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
            {
                let looks_json = serde_json::from_str::<Value>(body).is_ok();
                b = b.header(
                    "Content-Type",
                    if looks_json {
                        "application/json"
                    } else {
                        "text/plain; charset=utf-8"
                    },
                );
            }
            b = b.body(body.to_string());
        }
        let mut resp = b.send().await.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        let mut headers = Map::new();
        for (k, v) in resp.headers() {
            let v = String::from_utf8_lossy(v.as_bytes()).to_string();
            match headers.get_mut(k.as_str()) {
                Some(Value::String(s)) => {
                    s.push_str(", ");
                    s.push_str(&v);
                }
                _ => {
                    headers.insert(k.as_str().to_string(), Value::String(v));
                }
            }
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e))? {
            if bytes.len() + chunk.len() > self.max_response {
                return Err(StepError::permanent(format!(
                    "HTTP {status}: the response is larger than the {} byte limit",
                    self.max_response
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }
}

// Connection failures and timeouts may pass; the rest (a refused address in
// the resolver, a bad URL) will not.
fn classify(e: &reqwest::Error) -> StepError {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    let mut refused = false;
    while let Some(s) = source {
        refused |= s.is::<tocsin_core::workflow::NetDenied>();
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    if refused {
        StepError::permanent(format!("refused by the outgoing HTTP policy: {chain}"))
    } else if e.is_timeout() {
        StepError::retryable(format!("no answer in time: {chain}"))
    } else if e.is_connect() || e.is_request() || e.is_body() {
        StepError::retryable(chain)
    } else {
        StepError::permanent(chain)
    }
}

/// The `http` step: a request, its status checked against `expect`, and the
/// response as outputs (`status`, `headers`, `body`) for captures.
pub struct HttpStep {
    outbound: Outbound,
}

impl HttpStep {
    /// Sending through `outbound`.
    pub fn new(outbound: Outbound) -> HttpStep {
        HttpStep { outbound }
    }
}

impl StepExecutor for HttpStep {
    fn kinds(&self) -> &'static [&'static str] {
        &["http"]
    }

    fn uses_secret_values(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::Http(h) = call.action else {
                return Err(StepError::permanent("not an http step"));
            };
            let resp = self
                .outbound
                .send(&OutboundRequest {
                    method: h.method,
                    url: &h.url,
                    headers: &h.headers,
                    body: h.body.as_deref(),
                    timeout: Duration::from_secs(h.timeout.as_secs().max(1)),
                    idempotency_key: call.idempotency_key,
                })
                .await?;
            let out = json!({ "status": resp.status, "headers": resp.headers, "body": resp.body });
            if h.accepts(resp.status) {
                return Ok(out);
            }
            let excerpt: String = match &resp.body {
                Value::String(s) => s.chars().take(200).collect(),
                other => other.to_string().chars().take(200).collect(),
            };
            let why = format!(
                "HTTP {} is not {}: {excerpt}",
                resp.status,
                if h.expect.is_empty() {
                    "a 2xx".to_string()
                } else {
                    format!("one of {:?}", h.expect)
                }
            );
            if retryable_status(resp.status) {
                Err(StepError::Retryable(why))
            } else {
                Err(StepError::Permanent(why))
            }
        })
    }
}
