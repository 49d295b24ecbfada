//! Answers to a page by phone through Twilio's webhooks: replies to the text
//! (`POST /hooks/twilio/sms`) and keys pressed during the call
//! (`POST /hooks/twilio/voice`). Signed like Twilio signs (computed here from the
//! documented algorithm, not with the server's code), acted on as the user whose
//! verified number it is, answered with TwiML.

use std::sync::Arc;

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::json;
use sha1::Sha1;
use tocsin_server::{AppState, Limits, TwilioInbound};

use crate::support::{test_settings, TestApp};

pub(crate) const TOKEN: &str = "twilio-auth-token-0123";
pub(crate) const PUBLIC: &str = "https://tocsin.example.com";
const BEA_PHONE: &str = "+15551230001";

/// A second server on the same database that takes Twilio replies, signed for
/// `PUBLIC` (Twilio calls the public URL; the request arrives on a loopback port).
pub(crate) async fn twilio_node(app: &TestApp) -> String {
    let state = AppState::new(
        app.store.clone(),
        test_settings(),
        Arc::new(app.clock.clone()),
        Limits::default(),
    )
    .with_twilio(TwilioInbound::new(TOKEN, format!("{PUBLIC}/")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tocsin_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

/// Twilio's signature: base64(HMAC-SHA1(token, url + each param name and value sorted by name)).
pub(crate) fn sign(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The parameters Twilio posts for an incoming text from `from` saying `body`.
fn incoming<'a>(from: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ToCountry", "US"),
        ("SmsMessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("NumMedia", "0"),
        ("Body", body),
        ("From", from),
        ("To", "+15017122661"),
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("NumSegments", "1"),
        ("ApiVersion", "2010-04-01"),
    ]
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    content_type: String,
    pub(crate) body: String,
}

impl Answer {
    /// The texts of the TwiML's `<Say>`s.
    fn says(&self) -> Vec<String> {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert!(
            self.content_type.starts_with("text/xml"),
            "{}",
            self.content_type
        );
        let doc = roxmltree::Document::parse(&self.body).expect("well-formed TwiML");
        assert_eq!(doc.root_element().tag_name().name(), "Response");
        doc.root_element()
            .children()
            .filter(|n| n.has_tag_name("Say"))
            .map(|n| n.text().unwrap_or("").to_string())
            .collect()
    }

    /// The text of the TwiML `<Message>`; None for an empty `<Response/>`.
    fn message(&self) -> Option<String> {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert!(
            self.content_type.starts_with("text/xml"),
            "{}",
            self.content_type
        );
        let doc = roxmltree::Document::parse(&self.body).expect("well-formed TwiML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "Response");
        let messages: Vec<_> = root.children().filter(|n| n.is_element()).collect();
        assert!(messages.len() <= 1, "{}", self.body);
        messages.first().map(|m| {
            assert_eq!(m.tag_name().name(), "Message");
            m.text().unwrap_or("").to_string()
        })
    }
}

async fn post(base: &str, params: &[(&str, &str)], signature: Option<&str>) -> Answer {
    post_to(base, "/hooks/twilio/sms", params, signature).await
}

pub(crate) async fn post_to(
    base: &str,
    path: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> Answer {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = signature {
        req = req.header("X-Twilio-Signature", s);
    }
    let r = req.send().await.unwrap();
    Answer {
        status: r.status(),
        content_type: r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        body: r.text().await.unwrap(),
    }
}

/// A text from `from` saying `body`, signed as Twilio would.
async fn text(base: &str, from: &str, body: &str) -> Answer {
    let params = incoming(from, body);
    let sig = sign(&format!("{PUBLIC}/hooks/twilio/sms"), &params);
    post(base, &params, Some(&sig)).await
}

/// A user with `role` and an SMS contact method at `phone`; their id.
async fn user_with_phone(app: &TestApp, name: &str, role: &str, phone: &str) -> i64 {
    let email = format!("{}.sms@example.com", name.to_lowercase());
    let r = app
        .post(
            "/api/v1/users",
            json!({ "name": name, "email": email, "role": role }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/api/v1/users/{id}/contact-methods"),
            json!({ "kind": "sms", "address": phone, "verified": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id
}

async fn incident(app: &TestApp, title: &str) -> i64 {
    app.declare(json!({ "title": title })).await["id"]
        .as_i64()
        .unwrap()
}

async fn status_of(app: &TestApp, id: i64) -> String {
    app.get(&format!("/api/v1/incidents/{id}")).await.body["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn a_signed_reply_acknowledges_then_resolves_as_its_sender(app: TestApp) {
    let base = twilio_node(&app).await;
    let bea = user_with_phone(&app, "Bea", "responder", BEA_PHONE).await;
    let id = incident(&app, "Database <primary> down").await;

    let said = text(&base, BEA_PHONE, &format!("  {id}  ACK "))
        .await
        .message();
    assert_eq!(
        said.as_deref(),
        Some(format!("INC-{id} acknowledged by Bea: Database <primary> down").as_str())
    );
    assert_eq!(status_of(&app, id).await, "acknowledged");
    let tl = app.timeline(id).await;
    let moved = tl
        .iter()
        .find(|e| e["kind"] == "incident.status_changed")
        .expect("status change");
    assert_eq!(moved["actor_id"].as_i64(), Some(bea));
    assert_eq!(moved["data"]["to"], "acknowledged");
    let reply = tl
        .iter()
        .find(|e| e["kind"] == "incident.sms_reply")
        .expect("the reply on the timeline");
    assert_eq!(
        (reply["actor_id"].as_i64(), reply["actor"].as_str()),
        (Some(bea), Some("Bea"))
    );
    assert_eq!(
        reply["data"],
        json!({ "from": BEA_PHONE, "action": "acknowledge", "changed": true, "status": "acknowledged" })
    );

    let said = text(&base, BEA_PHONE, &format!("#{id} r")).await.message();
    assert!(said
        .unwrap()
        .starts_with(&format!("INC-{id} resolved by Bea")));
    assert_eq!(status_of(&app, id).await, "resolved");
}

async fn forged_or_missing_signatures_are_refused_and_nothing_is_written(app: TestApp) {
    let base = twilio_node(&app).await;
    user_with_phone(&app, "Bea", "responder", BEA_PHONE).await;
    let id = incident(&app, "x").await;
    let before = app.counts().await;
    let body = format!("{id} ack");
    let params = incoming(BEA_PHONE, &body);
    let url = format!("{PUBLIC}/hooks/twilio/sms");
    let good = sign(&url, &params);
    let mut tampered = params.clone();
    tampered[3].1 = "1 resolve";
    for (what, params, sig) in [
        ("no signature", params.clone(), None),
        (
            "garbage",
            params.clone(),
            Some("not-a-signature".to_string()),
        ),
        // Signed for the address the request arrived at, not the public URL.
        (
            "wrong URL",
            params.clone(),
            Some(sign(&format!("{base}/hooks/twilio/sms"), &params)),
        ),
        ("another body", tampered, Some(good.clone())),
        (
            "another token",
            params.clone(),
            Some({
                let mut mac = Hmac::<Sha1>::new_from_slice(b"other").unwrap();
                mac.update(url.as_bytes());
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            }),
        ),
    ] {
        let r = post(&base, &params, sig.as_deref()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.body);
    }
    assert_eq!(app.counts().await, before);
    assert_eq!(status_of(&app, id).await, "triggered");
    // The genuine request still works.
    assert!(post(&base, &params, Some(&good)).await.message().is_some());
    assert_eq!(status_of(&app, id).await, "acknowledged");
}

async fn una_method(app: &TestApp, user: i64) -> i64 {
    let r = app
        .get(&format!("/api/v1/users/{user}/contact-methods"))
        .await;
    r.body[0]["id"].as_i64().unwrap()
}

async fn unknown_unverified_and_viewer_numbers_change_nothing(app: TestApp) {
    let base = twilio_node(&app).await;
    let id = incident(&app, "x").await;
    user_with_phone(&app, "Vic", "viewer", "+15551230003").await;
    let una = user_with_phone(&app, "Una", "responder", "+15551230004").await;
    // Una's number is not verified (yet).
    let r = app
        .call(
            reqwest::Method::PATCH,
            &format!(
                "/api/v1/users/{una}/contact-methods/{}",
                una_method(&app, una).await
            ),
            Some(&app.admin_token),
            Some(json!({ "verified": false })),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let before = app.counts().await;
    let body = format!("{id} ack");
    for (from, want) in [
        ("+15551230002", "not a verified SMS contact"),
        ("+15551230004", "not a verified SMS contact"),
        ("+15551230003", "role cannot acknowledge"),
    ] {
        let said = text(&base, from, &body).await.message().unwrap();
        assert!(said.contains(want), "{from}: {said}");
    }
    assert_eq!(app.counts().await, before);
    assert_eq!(status_of(&app, id).await, "triggered");
}

async fn replies_that_cannot_act_say_why(app: TestApp) {
    let base = twilio_node(&app).await;
    user_with_phone(&app, "Bea", "responder", BEA_PHONE).await;
    let id = incident(&app, "x").await;
    assert_eq!(app.move_to(id, "resolved").await.status, StatusCode::OK);
    let before = app.counts().await;

    let said = text(&base, BEA_PHONE, "hello").await.message().unwrap();
    assert!(said.contains("e.g. \"12 ack\""), "{said}");
    let said = text(&base, BEA_PHONE, "999 ack").await.message().unwrap();
    assert!(said.starts_with("There is no incident 999."), "{said}");
    // Twilio's own words are left to Twilio: no answer, nothing written.
    for word in ["STOP", "help", "Start"] {
        assert_eq!(text(&base, BEA_PHONE, word).await.message(), None, "{word}");
    }
    assert_eq!(app.counts().await, before);

    // A resolved incident stays resolved; the reply is recorded as changing nothing.
    let said = text(&base, BEA_PHONE, &format!("{id} ack")).await.message();
    assert_eq!(
        said.as_deref(),
        Some(format!("INC-{id} is already resolved; nothing changed.").as_str())
    );
    assert_eq!(status_of(&app, id).await, "resolved");
    let tl = app.timeline(id).await;
    let reply = tl
        .iter()
        .find(|e| e["kind"] == "incident.sms_reply")
        .unwrap();
    assert_eq!(reply["data"]["changed"], false);
}

async fn without_twilio_configured_the_route_is_not_there(app: TestApp) {
    let params = incoming(BEA_PHONE, "1 ack");
    let sig = sign(&format!("{PUBLIC}/hooks/twilio/sms"), &params);
    let r = post(&app.base, &params, Some(&sig)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let path = "/hooks/twilio/voice?incident=1";
    let params = keypress(BEA_PHONE, "4");
    let sig = sign(&format!("{PUBLIC}{path}"), &params);
    let r = post_to(&app.base, path, &params, Some(&sig)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

/// What Twilio posts to a `<Gather>` action on an outbound call to `called`.
fn keypress<'a>(called: &'a str, digits: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("CallStatus", "in-progress"),
        ("Called", called),
        ("Caller", "+15017122661"),
        ("Digits", digits),
        ("Direction", "outbound-api"),
        ("From", "+15017122661"),
        ("To", called),
        ("FinishedOnKey", ""),
    ]
}

/// A key pressed during the call about `incident`, signed as Twilio would.
async fn press(base: &str, incident: i64, called: &str, digits: &str) -> Answer {
    let path = format!("/hooks/twilio/voice?incident={incident}");
    let params = keypress(called, digits);
    let sig = sign(&format!("{PUBLIC}{path}"), &params);
    post_to(base, &path, &params, Some(&sig)).await
}

/// A user with a voice contact method at `phone`; their id.
async fn voice_user(app: &TestApp, name: &str, role: &str, phone: &str) -> i64 {
    let id = user_with_phone(app, name, role, "+15559990000").await;
    let r = app
        .post(
            &format!("/api/v1/users/{id}/contact-methods"),
            json!({ "kind": "voice", "address": phone, "verified": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    id
}

async fn a_key_pressed_during_the_call_acts_as_the_person_called(app: TestApp) {
    let base = twilio_node(&app).await;
    let bea = voice_user(&app, "Bea", "responder", BEA_PHONE).await;
    let id = incident(&app, "Queue & <backlog>").await;

    let said = press(&base, id, BEA_PHONE, "4").await.says();
    assert_eq!(
        said,
        [
            format!("INC-{id} acknowledged by Bea: Queue & <backlog>"),
            "Goodbye.".to_string()
        ]
    );
    assert_eq!(status_of(&app, id).await, "acknowledged");
    let tl = app.timeline(id).await;
    let reply = tl
        .iter()
        .find(|e| e["kind"] == "incident.call_reply")
        .expect("the key on the timeline");
    assert_eq!(reply["actor_id"].as_i64(), Some(bea));
    assert_eq!(
        reply["data"],
        json!({ "from": BEA_PHONE, "action": "acknowledge", "changed": true, "status": "acknowledged" })
    );

    // Another key does nothing; 6 resolves.
    let before = app.counts().await;
    let said = press(&base, id, BEA_PHONE, "9").await.says();
    assert!(said[0].starts_with("That key does nothing"), "{said:?}");
    assert_eq!(app.counts().await, before);
    press(&base, id, BEA_PHONE, "6").await.says();
    assert_eq!(status_of(&app, id).await, "resolved");
}

async fn keypresses_need_the_signature_and_a_verified_voice_number(app: TestApp) {
    let base = twilio_node(&app).await;
    voice_user(&app, "Bea", "responder", BEA_PHONE).await;
    // The SMS number of a voice user is not their voice number.
    let id = incident(&app, "x").await;
    let before = app.counts().await;
    let path = format!("/hooks/twilio/voice?incident={id}");
    let params = keypress(BEA_PHONE, "4");
    // Signed for another incident: the query is part of what is signed.
    let other = sign(
        &format!("{PUBLIC}/hooks/twilio/voice?incident={}", id + 1),
        &params,
    );
    for sig in [None, Some(other.as_str())] {
        let r = post_to(&base, &path, &params, sig).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    let said = press(&base, id, "+15559990000", "4").await.says();
    assert!(said[0].contains("not a verified voice contact"), "{said:?}");
    assert_eq!(app.counts().await, before);
    assert_eq!(status_of(&app, id).await, "triggered");
}

crate::both_backends!(
    a_signed_reply_acknowledges_then_resolves_as_its_sender,
    forged_or_missing_signatures_are_refused_and_nothing_is_written,
    unknown_unverified_and_viewer_numbers_change_nothing,
    replies_that_cannot_act_say_why,
    without_twilio_configured_the_route_is_not_there,
    a_key_pressed_during_the_call_acts_as_the_person_called,
    keypresses_need_the_signature_and_a_verified_voice_number,
);
