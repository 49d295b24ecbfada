//! HTTP plumbing every HTTP provider shares: one way to build the client, to
//! read an answer without trusting its size, and to read a timeout from the
//! configuration file.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::redirect::Policy;
use reqwest::{RequestBuilder, Url};
use serde::{Deserialize, Deserializer};
use tocsin_core::time::Timestamp;
use tocsin_core::Invalid;

use crate::classify::{classify, transport, SendError};
use crate::USER_AGENT;

/// How long a service has to answer unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// [`DEFAULT_TIMEOUT`], for `#[serde(default = …)]`.
pub(crate) fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// The most of a success answer a provider reads (Slack's and Discord's are a few kilobytes).
pub(crate) const ANSWER_BYTES: usize = 64 * 1024;

/// A client sending Tocsin's `User-Agent`, giving up after `timeout` and not
/// following redirects: a POST turned into a GET, or a message sent somewhere
/// not configured, is worse than a clear permanent error.
pub(crate) fn client(timeout: Duration, section: &str) -> Result<reqwest::Client, Invalid> {
    if timeout.is_zero() {
        return Err(Invalid::new("timeout_seconds", "must be more than zero"));
    }
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .redirect(Policy::none())
        .build()
        .map_err(|e| Invalid::new(section, e.to_string()))
}

/// An answer as far as it was read: status, headers and at most `limit` bytes of body.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// What the answer says about the send: [`classify`] over its status, headers and body.
    pub(crate) fn classify(&self, now: Timestamp) -> Result<(), SendError> {
        classify(self.status, &self.headers, &self.body, now)
    }
}

/// Sends `request` once and reads at most about `limit` bytes of the answer:
/// a service answering with megabytes costs nothing.
pub(crate) async fn send(
    request: RequestBuilder,
    timeout: Duration,
    limit: usize,
) -> Result<Answer, SendError> {
    // Chat webhook URLs carry their credential (a token in the path, `sig=`),
    // and reqwest's errors quote the URL: it stays out of the reason.
    let response = request
        .send()
        .await
        .map_err(|e| transport(&e.without_url(), timeout))?;
    Ok(read(response, limit).await)
}

/// Status, headers and at most about `limit` bytes of `response`'s body.
pub(crate) async fn read(mut response: reqwest::Response, limit: usize) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// An address as a URL to POST to: absolute http or https with a host. `what`
/// names the kind of address in the error ("webhook", "Teams").
pub(crate) fn web_url(address: &str, what: &str) -> Result<Url, SendError> {
    let url = Url::parse(address.trim())
        .map_err(|e| SendError::bad_address(format!("{what} address is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SendError::bad_address(format!(
            "{what} address must be an http or https URL"
        )));
    }
    Ok(url)
}

/// A configured API root: an http or https URL, without a trailing `/`.
pub(crate) fn base_url(text: &str, field: &str) -> Result<String, Invalid> {
    let url =
        Url::parse(text.trim()).map_err(|e| Invalid::new(field, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Invalid::new(field, "must be an http or https URL"));
    }
    Ok(text.trim().trim_end_matches('/').to_string())
}

/// Reads `timeout_seconds = 10` (or `2.5`) from the configuration file as a
/// [`Duration`]; every provider, HTTP or SMTP, reads its timeout this way.
pub(crate) fn timeout_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(serde::de::Error::custom(
            "timeout_seconds must be more than 0 and at most 3600",
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `text` cut to at most `max` characters where cutting cannot break an escape:
/// never inside an HTML entity (`&amp;`) or right after a backslash.
pub(crate) fn cut_escaped(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut head: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(amp) = head.rfind('&') {
        if !head[amp..].contains(';') {
            head.truncate(amp);
        }
    }
    // An odd run of trailing backslashes would escape the "…".
    let slashes = head.len() - head.trim_end_matches('\\').len();
    if slashes % 2 == 1 {
        head.pop();
    }
    head.push('…');
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_never_breaks_an_escape() {
        assert_eq!(cut_escaped("short", 10), "short");
        assert_eq!(cut_escaped("abcdefgh", 5), "abcd…");
        assert_eq!(cut_escaped("ab &amp; cd", 6), "ab …");
        assert_eq!(cut_escaped("ab &amp; cd", 9), "ab &amp;…");
        assert_eq!(cut_escaped(r"ab\*cd", 4), "ab…");
        assert_eq!(cut_escaped(r"a\\bcd", 4), r"a\\…");
        assert_eq!(cut_escaped(&"é".repeat(20), 10).chars().count(), 10);
    }

    #[test]
    fn timeouts_are_read_in_seconds() {
        #[derive(Deserialize)]
        struct C {
            #[serde(deserialize_with = "timeout_seconds")]
            t: Duration,
        }
        let t = |v: &str| serde_json::from_str::<C>(&format!("{{\"t\":{v}}}")).map(|c| c.t);
        assert_eq!(t("10").unwrap(), Duration::from_secs(10));
        assert_eq!(t("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(t("2.5").unwrap(), Duration::from_millis(2500));
        assert!(t("0").is_err());
        assert!(t("-1").is_err());
        assert!(t("\"10s\"").is_err());
    }

    #[test]
    fn base_urls_lose_their_trailing_slash() {
        assert_eq!(
            base_url("https://slack.com/api/", "f").unwrap(),
            "https://slack.com/api"
        );
        assert_eq!(base_url("ftp://x/", "f").unwrap_err().field, "f");
        assert_eq!(base_url("nope", "f").unwrap_err().field, "f");
    }
}
