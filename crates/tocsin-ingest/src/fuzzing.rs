//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz): each feeds arbitrary
//! bytes to one inbound parser and checks what a parsed event promises. The same
//! entry points run in the unit tests below over seeds and seeded mutations, so
//! they stay compiled and exercised without a fuzzer.

use tocsin_core::alert::{AlertEvent, MAX_DEDUP_KEY, MAX_SUMMARY};

use crate::{alertmanager, pagerduty};

fn check(ev: &AlertEvent) {
    let n = ev.dedup_key.as_str().chars().count();
    assert!(n > 0 && n <= MAX_DEDUP_KEY, "dedup key of {n} characters");
    assert!(
        ev.summary.chars().count() <= MAX_SUMMARY,
        "summary too long"
    );
}

/// PagerDuty Events v2: alert events and change events.
pub fn pagerduty(data: &[u8]) {
    match pagerduty::parse(data) {
        Ok(e) => check(&e.event),
        Err(r) => assert!(!r.0.is_empty(), "a refusal lists its errors"),
    }
    if let Ok((_, change)) = pagerduty::parse_change(data) {
        assert!(!change.summary.is_empty() && change.summary.chars().count() <= MAX_SUMMARY);
    }
}

/// Alertmanager and Grafana webhook notifications.
pub fn alertmanager(data: &[u8]) {
    for flavor in [
        alertmanager::Flavor::Alertmanager,
        alertmanager::Flavor::Grafana,
    ] {
        if let Ok(parsed) = alertmanager::parse(data, flavor) {
            assert!(parsed.len() <= alertmanager::MAX_ALERTS);
            for p in &parsed {
                check(&p.event);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Runs `target` on each seed and on `rounds` seeded mutations of the seeds
    /// (bytes flipped, inserted, deleted; slices duplicated; truncations).
    pub(crate) fn mutate_and_run(seeds: &[&[u8]], rounds: usize, target: fn(&[u8])) {
        let mut rng = StdRng::seed_from_u64(0x70c5_1a);
        for seed in seeds {
            target(seed);
        }
        for _ in 0..rounds {
            let mut d = seeds[rng.gen_range(0..seeds.len())].to_vec();
            for _ in 0..rng.gen_range(1..8) {
                let len = d.len();
                match rng.gen_range(0..5) {
                    0 if len > 0 => {
                        let i = rng.gen_range(0..len);
                        d[i] = rng.gen();
                    }
                    1 => {
                        let i = rng.gen_range(0..=len);
                        let b = *b"{}[]\":,0-9e.\\u\x00\xff"
                            .get(rng.gen_range(0..18))
                            .unwrap_or(&b'x');
                        d.insert(i, b);
                    }
                    2 if len > 0 => {
                        d.remove(rng.gen_range(0..len));
                    }
                    3 if len > 1 => {
                        let a = rng.gen_range(0..len);
                        let b = rng.gen_range(a..len);
                        let slice = d[a..b].to_vec();
                        let at = rng.gen_range(0..=d.len());
                        d.splice(at..at, slice);
                    }
                    _ => d.truncate(rng.gen_range(0..=len)),
                }
            }
            target(&d);
        }
    }

    const PD: &[u8] = br#"{"routing_key": "k", "event_action": "trigger", "dedup_key": "d",
        "payload": {"summary": "s", "source": "h", "severity": "error", "timestamp": "2015-07-17T08:42:58.315+0000",
        "component": "c", "group": "g", "class": "x", "custom_details": {"a": [1, 2]}},
        "links": [{"href": "https://a", "text": "t"}], "images": [{"src": "https://i", "href": "https://h", "alt": "a"}],
        "client": "c", "client_url": "https://c"}"#;
    const PD_CHANGE: &[u8] = br#"{"routing_key": "k", "payload": {"summary": "deploy", "source": "ci",
        "timestamp": "2020-07-17T08:42:58Z", "custom_details": {}}, "links": [{"href": "https://a"}]}"#;
    const AM: &[u8] = br#"{"receiver": "r", "status": "firing", "version": "4", "alerts": [
        {"status": "firing", "labels": {"alertname": "A", "severity": "critical"}, "annotations": {"summary": "s"},
         "startsAt": "2023-02-06T13:08:45.828Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://g",
         "fingerprint": "1a30", "values": {"B": 1}, "silenceURL": "http://s"},
        {"status": "resolved", "labels": {"alertname": "A"}, "annotations": {}}],
        "commonLabels": {"job": "j"}, "externalURL": "http://am", "groupKey": "{}"}"#;

    #[test]
    fn pagerduty_parsers_survive_mutations() {
        mutate_and_run(
            &[PD, PD_CHANGE, b"", b"null", b"[]"],
            20_000,
            super::pagerduty,
        );
    }

    #[test]
    fn alertmanager_parser_survives_mutations() {
        mutate_and_run(&[AM, b"{\"alerts\": []}"], 20_000, super::alertmanager);
    }
}
