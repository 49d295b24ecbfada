//! How an HTTP answer or a transport failure becomes a [`SendError`]: one
//! classification shared by every HTTP provider, so retries behave the same
//! whichever service is on the other end.

use std::time::Duration;

use chrono::{NaiveDateTime, TimeZone, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use tocsin_core::time::Timestamp;

/// At most this much of a provider's answer is kept in an error's reason.
pub const EXCERPT_BYTES: usize = 1024;

/// Why a message was not sent, classified for the retry logic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: the far side was down, overloaded, slow or unreachable.
    #[error("{reason}")]
    Retryable {
        /// What happened, with an excerpt of the answer when there was one.
        reason: String,
        /// How long the provider asked us to wait (`Retry-After`), when it said.
        retry_after: Option<Duration>,
    },
    /// Trying again cannot help: the request or the address is wrong.
    #[error("{reason}")]
    Permanent {
        /// The HTTP status, when the far side answered.
        status: Option<u16>,
        /// What happened, with an excerpt of the answer when there was one.
        reason: String,
    },
}

impl SendError {
    /// Whether the delivery worker should try again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable { .. })
    }

    /// The reason, whichever kind.
    pub fn reason(&self) -> &str {
        match self {
            SendError::Retryable { reason, .. } | SendError::Permanent { reason, .. } => reason,
        }
    }

    /// A contact method's address no provider can use.
    pub(crate) fn bad_address(reason: impl Into<String>) -> Self {
        SendError::Permanent {
            status: None,
            reason: reason.into(),
        }
    }
}

/// Classifies an HTTP answer: `Ok` for 2xx; retryable for 408, 429 and 5xx
/// (with `Retry-After`, seconds or an HTTP date, when given); permanent for
/// everything else (other 4xx, and 1xx/3xx, since redirects are not followed).
pub fn classify(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<(), SendError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let name = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut reason = format!("HTTP {status} {name}").trim_end().to_string();
    let said = excerpt(body);
    if !said.is_empty() {
        reason.push_str(": ");
        reason.push_str(&said);
    }
    if status == 408 || status == 429 || (500..600).contains(&status) {
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        return Err(SendError::Retryable {
            reason,
            retry_after,
        });
    }
    if (300..400).contains(&status) {
        if let Some(to) = headers.get("location").and_then(|v| v.to_str().ok()) {
            reason.push_str(&format!(
                " (redirects to {}; not followed)",
                excerpt(to.as_bytes())
            ));
        }
    }
    Err(SendError::Permanent {
        status: Some(status),
        reason,
    })
}

/// A `Retry-After` value as a wait from `now`: delay-seconds, or an HTTP date
/// (IMF-fixdate, or the obsolete RFC 850 and asctime forms). A date already
/// past means no wait. `None` when it is neither.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
                .map(|n| Utc.from_utc_datetime(&n))
        })?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// At most [`EXCERPT_BYTES`] of an answer as text, cut on a character, "…" when cut.
pub fn excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(EXCERPT_BYTES * 2)];
    let text = String::from_utf8_lossy(head);
    let text = text.trim();
    if text.len() <= EXCERPT_BYTES && head.len() == body.len() {
        return text.to_string();
    }
    let mut end = (EXCERPT_BYTES - '…'.len_utf8()).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", text[..end].trim_end())
}

/// A failure before any answer: timeouts and connection failures are worth
/// retrying; a request that could not even be built is not.
pub(crate) fn transport(err: &reqwest::Error, timeout: Duration) -> SendError {
    if err.is_builder() {
        return SendError::bad_address(format!("cannot send: {}", chain(err)));
    }
    let reason = if err.is_timeout() {
        format!("no answer within {} ms", timeout.as_millis())
    } else if err.is_connect() {
        format!("could not connect: {}", chain(err))
    } else {
        format!("request failed: {}", chain(err))
    };
    SendError::Retryable {
        reason,
        retry_after: None,
    }
}

// reqwest's own message is generic ("error sending request"); the cause is in the sources.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn now() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn retry_after_of(r: Result<(), SendError>) -> Option<Duration> {
        match r {
            Err(SendError::Retryable { retry_after, .. }) => retry_after,
            other => panic!("expected retryable, got {other:?}"),
        }
    }

    #[test]
    fn success_is_any_2xx() {
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(classify(s, &HeaderMap::new(), b"", now()), Ok(()));
        }
    }

    #[test]
    fn server_errors_timeouts_and_throttling_are_retryable() {
        for (s, reason) in [
            (408, "HTTP 408 Request Timeout: busy"),
            (429, "HTTP 429 Too Many Requests: busy"),
            (500, "HTTP 500 Internal Server Error: busy"),
            (502, "HTTP 502 Bad Gateway: busy"),
            (503, "HTTP 503 Service Unavailable: busy"),
            (504, "HTTP 504 Gateway Timeout: busy"),
            (599, "HTTP 599: busy"),
        ] {
            assert_eq!(
                classify(s, &HeaderMap::new(), b"busy", now()),
                Err(SendError::Retryable {
                    reason: reason.into(),
                    retry_after: None
                }),
            );
        }
    }

    #[test]
    fn other_client_errors_and_redirects_are_permanent() {
        for s in [400, 401, 403, 404, 410, 413, 422, 301, 302, 100] {
            match classify(s, &HeaderMap::new(), b"", now()) {
                Err(SendError::Permanent { status, .. }) => assert_eq!(status, Some(s)),
                other => panic!("{s}: {other:?}"),
            }
        }
        let r = classify(
            302,
            &headers(&[("location", "https://elsewhere.example/hook")]),
            b"",
            now(),
        );
        assert!(r
            .unwrap_err()
            .reason()
            .contains("redirects to https://elsewhere.example/hook"));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            retry_after_of(classify(429, &h, b"", now())),
            Some(Duration::from_secs(7))
        );
        let h = headers(&[("retry-after", "Wed, 25 Nov 2026 01:02:00 GMT")]);
        assert_eq!(
            retry_after_of(classify(503, &h, b"", now())),
            Some(Duration::from_secs(120))
        );
        // A date already past: no wait, but still a hint that the service is throttling.
        let h = headers(&[("retry-after", "Wed, 25 Nov 2026 00:59:00 GMT")]);
        assert_eq!(
            retry_after_of(classify(429, &h, b"", now())),
            Some(Duration::ZERO)
        );
        let h = headers(&[("retry-after", "soon")]);
        assert_eq!(retry_after_of(classify(429, &h, b"", now())), None);
        let h = headers(&[("retry-after", "-5")]);
        assert_eq!(retry_after_of(classify(429, &h, b"", now())), None);
    }

    #[test]
    fn obsolete_http_dates_are_understood() {
        let want = Some(Duration::from_secs(60));
        assert_eq!(
            parse_retry_after("Wednesday, 25-Nov-26 01:01:00 GMT", now()),
            want
        );
        assert_eq!(parse_retry_after("Wed Nov 25 01:01:00 2026", now()), want);
        assert_eq!(
            parse_retry_after(" 30 ", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("", now()), None);
    }

    #[test]
    fn the_reason_keeps_at_most_a_kilobyte_of_the_answer() {
        let body = format!("{{\"error\":\"{}\"}}", "é".repeat(2000));
        let reason = classify(400, &HeaderMap::new(), body.as_bytes(), now())
            .unwrap_err()
            .reason()
            .to_string();
        let said = reason.strip_prefix("HTTP 400 Bad Request: ").unwrap();
        assert!(said.len() <= EXCERPT_BYTES, "{}", said.len());
        assert!(said.len() > EXCERPT_BYTES - 8);
        assert!(said.starts_with("{\"error\":\"éé"));
        assert!(said.ends_with('…'));
        assert_eq!(excerpt(b"  short answer \n"), "short answer");
        assert_eq!(excerpt(&[b'a'; EXCERPT_BYTES]), "a".repeat(EXCERPT_BYTES));
        assert_eq!(excerpt(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
    }
}
