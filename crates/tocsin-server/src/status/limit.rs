//! A light limit on subscription requests per client address, so the public
//! form cannot be used to send confirmation mail to a list of strangers. (One
//! address gets at most one confirmation per few minutes anyway: the store
//! sees to that.) This node's memory only: a sender spread over several nodes
//! gets a few more, never unlimited.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tocsin_core::time::Timestamp;

/// Requests a client may make at once.
const BURST: f64 = 10.0;
/// Requests it earns back per minute.
const PER_MINUTE: f64 = 1.0;
/// Clients tracked at most (a few MB).
const MAX_TRACKED: usize = 50_000;

/// Token buckets by client address.
#[derive(Default)]
pub struct SubscribeLimiter(Mutex<HashMap<IpAddr, (f64, Timestamp)>>);

impl SubscribeLimiter {
    /// Takes one request from `client`'s allowance at `now`; `Err(seconds)`
    /// until the next one is allowed.
    pub fn take(&self, client: IpAddr, now: Timestamp) -> Result<(), u64> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_TRACKED && !m.contains_key(&client) {
            // Forget those whose allowance is back to full; if that is not
            // enough, everyone but this client (a flood of addresses).
            m.retain(|_, (tokens, at)| refilled(*tokens, *at, now) < BURST);
            if m.len() >= MAX_TRACKED {
                m.clear();
            }
        }
        let (tokens, at) = m.entry(client).or_insert((BURST, now));
        let have = refilled(*tokens, *at, now);
        if have < 1.0 {
            let wait = ((1.0 - have) * 60.0 / PER_MINUTE).ceil() as u64;
            return Err(wait.max(1));
        }
        *tokens = have - 1.0;
        *at = now;
        Ok(())
    }
}

fn refilled(tokens: f64, at: Timestamp, now: Timestamp) -> f64 {
    let minutes = (now - at).num_milliseconds().max(0) as f64 / 60_000.0;
    (tokens + minutes * PER_MINUTE).min(BURST)
}

/// Who is asking, for the limit: the connecting address; when that is this
/// machine (a reverse proxy in front), the address the proxy appended last to
/// `X-Forwarded-For`. IPv6 clients count per /64, which one host usually has.
pub(crate) struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = || {
            parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last()
                .and_then(|a| a.trim().parse::<IpAddr>().ok())
        };
        let ip = match peer {
            Some(p) if p.is_loopback() => forwarded().or(Some(p)),
            other => other,
        };
        Ok(ClientAddr(ip.map(per_host)))
    }
}

fn per_host(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let mut s = v6.segments();
            s[4..].fill(0);
            IpAddr::V6(s.into())
        }
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use tocsin_core::time::from_millis;

    use super::*;

    #[test]
    fn a_client_gets_a_burst_then_one_a_minute() {
        let l = SubscribeLimiter::default();
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        let t = from_millis(1_767_225_600_000);
        for _ in 0..10 {
            assert_eq!(l.take(a, t), Ok(()));
        }
        assert_eq!(l.take(a, t), Err(60));
        assert_eq!(l.take(b, t), Ok(()), "others are not held back");
        assert_eq!(l.take(a, t + Duration::seconds(30)), Err(30));
        assert_eq!(l.take(a, t + Duration::seconds(60)), Ok(()));
        assert!(l.take(a, t + Duration::seconds(61)).is_err());
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(per_host(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(per_host(mapped), "203.0.113.7".parse::<IpAddr>().unwrap());
    }
}
