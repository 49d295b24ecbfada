//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz): each feeds arbitrary
//! bytes to one inbound parser and checks what a parsed event promises. The same
//! entry points run in the unit tests below over seeds and seeded mutations, so
//! they stay compiled and exercised without a fuzzer.

use tocsin_core::alert::{AlertEvent, MAX_DEDUP_KEY, MAX_SUMMARY};

use tocsin_core::integration::Templates;

use crate::{alertmanager, email, generic, pagerduty};

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

/// Inbound mail (what the SMTP listener hands over after DATA).
pub fn email(data: &[u8]) {
    if let Ok(ev) = email::parse(data, &email::EmailOptions::default()) {
        check(&ev);
    }
}

/// The generic JSON webhook, with the default templates and with typical custom ones.
pub fn generic(data: &[u8]) {
    for templates in [Templates::default(), custom_templates()] {
        if let Ok(events) = generic::parse(&templates, data) {
            for (ev, _) in &events {
                check(ev);
            }
        }
    }
}

/// Status-page subscriber links (`?token=` in confirm and unsubscribe mail) and the
/// address a reader types to subscribe: outside text taken without a login. A
/// token that verifies must be one this key signed, so with a key nobody used it
/// must always be refused.
pub fn status_link(data: &[u8]) {
    use tocsin_core::status_page::token::{verify, LinkPurpose};
    let text = String::from_utf8_lossy(data);
    let now = tocsin_core::time::from_millis(1_767_225_600_000);
    for purpose in [LinkPurpose::Confirm, LinkPurpose::Unsubscribe] {
        assert!(
            verify(b"a key no token was signed with", &text, purpose, now).is_err(),
            "an unsigned token verified"
        );
    }
    if let Ok(email) = tocsin_core::model::EmailAddress::parse("email", &text) {
        assert!(email.as_str().contains('@') && email.as_str().len() <= 254);
    }
}

fn custom_templates() -> Templates {
    Templates {
        title: Some("{{ payload.alert.name }} on {{ payload.host | default('?') }}".into()),
        severity: Some(
            "{{ {'P1': 'critical', 'P2': 'error'}[payload.priority] | default('warning') }}".into(),
        ),
        dedup_key: Some("{{ payload.id }}".into()),
        description: Some("{{ payload | tojson }}".into()),
        links: Some("{{ payload.links | default([]) | tojson }}".into()),
        labels: Some("{{ payload.tags | default({}) | tojson }}".into()),
        resolve_condition: Some("payload.state == 'ok'".into()),
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Runs `target` on each seed and on `rounds` seeded mutations of the seeds
    /// (bytes flipped, inserted, deleted; slices duplicated; truncations).
    pub(crate) fn mutate_and_run(seeds: &[&[u8]], rounds: usize, target: fn(&[u8])) {
        let mut rng = StdRng::seed_from_u64(0x0070_c51a);
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
    fn status_links_survive_mutations() {
        let seeds: &[&[u8]] = &[
            b"AQEAAAAAAAAADAAAAAAAAAAABwcHBwcHBwcHBwcHBwcHBw.q3Rk6Pd0mN1vT0ZfJ3x9aK0Tn8s7PqW2yVv5cL1eG4U",
            b"reader@example.com",
            b"a.b",
        ];
        mutate_and_run(seeds, 5_000, super::status_link);
    }

    #[test]
    fn pagerduty_parsers_survive_mutations() {
        mutate_and_run(
            &[PD, PD_CHANGE, b"", b"null", b"[]"],
            20_000,
            super::pagerduty,
        );
    }

    const MAIL: &[u8] = b"From: =?utf-8?q?Mon=C3=AFtor?= <nagios@example.com>\r\nTo: key@tocsin\r\n\
        Subject: Re: =?iso-8859-1?q?Disk_f=FCll?= on db-1\r\nMessage-ID: <a@b>\r\nReferences: <root@b> <a@b>\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"xx\"\r\n\r\n--xx\r\n\
        Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        Disk =C3=BCber 95%\r\n--xx\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        PGI+ZGlzazwvYj4=\r\n--xx--\r\n";
    const HOOK: &[u8] =
        br#"[{"id": "a-1", "title": "Queue backed up", "host": "mq-1", "priority": "P1",
        "alert": {"name": "QueueDepth"}, "links": ["https://x", {"href": "https://y", "text": "y"}],
        "tags": {"team": "infra"}, "state": "alerting"}, {"id": "a-1", "state": "ok"}]"#;

    #[test]
    fn email_parser_survives_mutations() {
        let ev = crate::email::parse(MAIL, &Default::default()).expect("the seed parses");
        assert_eq!(ev.dedup_key.as_str(), "root@b");
        mutate_and_run(&[MAIL, b"Subject: x\r\n\r\nbody"], 5_000, super::email);
    }

    #[test]
    fn generic_mapping_survives_mutations() {
        let events =
            crate::generic::parse(&super::custom_templates(), HOOK).expect("the seed maps");
        assert_eq!(events[0].0.summary, "QueueDepth on mq-1");
        assert_eq!(
            events[0].0.severity,
            tocsin_core::alert::AlertSeverity::Critical
        );
        assert_eq!(events[1].0.action, tocsin_core::alert::AlertAction::Resolve);
        mutate_and_run(&[HOOK, b"{}", b"[]"], 3_000, super::generic);
    }

    #[test]
    fn alertmanager_parser_survives_mutations() {
        mutate_and_run(&[AM, b"{\"alerts\": []}"], 20_000, super::alertmanager);
    }
}
