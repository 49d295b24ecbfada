//! The incident room: what each role sees, every form changing what the API
//! shows and adding to the timeline, escaping of notes, and refusals that
//! change nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::TestApp;
use crate::web_support::{signed_in, web_user, Web};

async fn incident(app: &TestApp, id: i64) -> Value {
    let r = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn viewer_sees_the_room_without_actions(app: TestApp) {
    let inc = app
        .declare(json!({ "title": "Checkout <b>502</b>", "description": "It **fails**" }))
        .await;
    let number = inc["number"].as_str().unwrap();
    let web = signed_in(&app, "viewer").await;
    for path in [
        format!("/incidents/{number}"),
        format!("/incidents/{}", inc["id"]),
    ] {
        let p = web.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.html);
        assert!(p.html.contains("id=\"room-head\" data-live-region"));
        assert!(
            p.html
                .contains("<h1 id=\"incident-title\">Checkout &#60;b&#62;502&#60;/b&#62;</h1>"),
            "{}",
            p.html
        );
        assert!(p
            .html
            .contains("class=\"status status-triggered\">triggered</span>"));
        assert!(
            p.html.contains("<strong>fails</strong>"),
            "description is Markdown"
        );
        assert!(p
            .html
            .contains("id=\"timeline\" class=\"timeline\" data-live-region"));
        // The severity comes from the declared incident in the event.
        assert!(
            p.html.contains(&format!(
                "declared the incident ({})",
                inc["severity"].as_str().unwrap()
            )),
            "{}",
            p.html
        );
        assert!(p.html.contains("data-live=\"incident:"));
        assert!(
            !p.html.contains("action=\"/incidents/INC-"),
            "a viewer gets no action form"
        );
        assert!(!p.html.contains("note-form"));
        assert!(!p.html.contains("name=\"status\""));
    }
    // A responder gets the forms, with one button per allowed move.
    let r = signed_in(&app, "responder").await;
    let p = r.get(&format!("/incidents/{number}")).await;
    assert!(p
        .html
        .contains(&format!("action=\"/incidents/{number}/status\"")));
    assert!(p.html.contains(
        "<button type=\"submit\" name=\"status\" value=\"acknowledged\">Acknowledge</button>"
    ));
    assert!(p
        .html
        .contains("value=\"resolved\" class=\"primary\">Resolve</button>"));
    assert!(
        !p.html.contains("value=\"closed\""),
        "closing is not a move from triggered"
    );
    assert!(p
        .html
        .contains("<form id=\"note-form\" method=\"post\" action=\"/incidents/"));
    // The note form sits outside every live region (it would be replaced while typing).
    let form_at = p.html.find("id=\"note-form\"").unwrap();
    let timeline_end = p.html[p.html.find("id=\"timeline\"").unwrap()..]
        .find("</ol>")
        .unwrap()
        + p.html.find("id=\"timeline\"").unwrap();
    assert!(form_at > timeline_end);

    // Unknown incident and a bad number.
    assert_eq!(
        web.get("/incidents/INC-99999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        web.get("/incidents/nope").await.status,
        StatusCode::BAD_REQUEST
    );
}

async fn forms_change_the_incident(app: TestApp) {
    let web = signed_in(&app, "responder").await;
    let other = app.declare(json!({ "title": "Older outage" })).await;
    let inc = app.declare(json!({ "title": "Checkout 502" })).await;
    let id = inc["id"].as_i64().unwrap();
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());

    // Acknowledge.
    let r = web
        .post(&format!("{room}/status"), &[("status", "acknowledged")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), room);
    assert_eq!(incident(&app, id).await["status"], "acknowledged");

    // A note, then marked as a decision.
    let r = web
        .post(&format!("{room}/notes"), &[("body", "Rolled back **v42**")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), format!("{room}#timeline"));
    let notes = app.get(&format!("/api/v1/incidents/{id}/notes")).await.body;
    let note_id = notes[0]["id"].as_i64().unwrap();
    assert_eq!(notes[0]["body"], "Rolled back **v42**");
    let r = web
        .post(
            &format!("{room}/notes/{note_id}/mark"),
            &[("kind", "decision")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let notes = app.get(&format!("/api/v1/incidents/{id}/notes")).await.body;
    assert_eq!(notes[0]["kind"], "decision");
    let p = web.get(&room).await;
    assert!(
        p.html.contains("<li id=\"event-") && p.html.contains("class=\"marked\""),
        "{}",
        p.html
    );
    assert!(p.html.contains("<span class=\"badge note-mark\">decision"));
    assert!(p.html.contains("<strong>v42</strong>"));

    // Edit fields: only what changed is recorded.
    let before = app.timeline(id).await.len();
    let r = web
        .post(
            &format!("{room}/fields"),
            &[
                ("title", "Checkout returns 502"),
                ("severity", "SEV2"),
                ("type", "software"),
                ("impact", "high"),
                ("urgency", "high"),
                ("labels", "checkout\npayments"),
                ("description", ""),
                ("root_cause", "Bad deploy"),
                ("resolution_summary", ""),
                ("services_shown", "1"),
                ("cf_shown.region", "1"),
                ("cf.region", "eu-west"),
                ("cf_shown.customers_affected", "1"),
                ("cf.customers_affected", "12"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let now = incident(&app, id).await;
    assert_eq!(now["title"], "Checkout returns 502");
    assert_eq!(now["severity"], "SEV2");
    assert_eq!(now["impact"], "high");
    assert_eq!(now["priority"], "P1");
    assert_eq!(now["labels"], json!(["checkout", "payments"]));
    assert_eq!(now["root_cause"], "Bad deploy");
    assert_eq!(now["custom_fields"]["region"], "eu-west");
    assert_eq!(now["custom_fields"]["customers_affected"], 12);
    let events = app.timeline(id).await;
    assert_eq!(events.len(), before + 1, "one edit, one event");
    let changed: Vec<&str> = events.last().unwrap()["data"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        !changed.contains(&"description") && !changed.contains(&"type"),
        "{changed:?}"
    );
    // A bad value is refused by name and changes nothing.
    let counts = app.counts().await;
    let r = web
        .post(&format!("{room}/fields"), &[("severity", "SEV9")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);
    assert!(r.html.contains("severity"), "{}", r.html);
    assert_eq!(app.counts().await, counts);

    // Roles and assignee.
    let me = web.user_id.to_string();
    let admin = app.admin_id.to_string();
    let r = web
        .post(
            &format!("{room}/roles"),
            &[
                ("assignee_id", me.as_str()),
                ("role.commander", me.as_str()),
                ("role.investigator", me.as_str()),
                ("role.investigator", admin.as_str()),
                ("role.communicator", ""),
                ("role.scribe", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let now = incident(&app, id).await;
    assert_eq!(now["assignee_id"], web.user_id);
    assert_eq!(now["roles"]["commander"], json!([web.user_id]));
    assert_eq!(
        now["roles"]["investigator"],
        json!([web.user_id, app.admin_id])
    );
    let p = web.get(&room).await;
    assert!(
        p.html
            .contains("<dd class=\"role-commander\">Web responder</dd>"),
        "{}",
        p.html
    );

    // Link a related incident, by number; an unknown one is refused.
    let r = web
        .post(
            &format!("{room}/related"),
            &[
                ("kind", "caused_by"),
                ("number", other["number"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(
        incident(&app, id).await["related"],
        json!([{ "kind": "caused_by", "incident_id": other["id"] }])
    );
    let r = web
        .post(
            &format!("{room}/related"),
            &[("kind", "related"), ("number", "INC-9999")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Resolve.
    let r = web
        .post(&format!("{room}/status"), &[("status", "resolved")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(incident(&app, id).await["status"], "resolved");
    let k = kinds(&app.timeline(id).await);
    for want in [
        "incident.status_changed",
        "incident.note_added",
        "incident.note_marked",
        "incident.updated",
    ] {
        assert!(k.iter().any(|x| x == want), "{want} in {k:?}");
    }
    let p = web.get(&room).await;
    assert!(
        p.html
            .contains("changed the status from acknowledged to resolved"),
        "{}",
        p.html
    );
    assert!(p.html.contains(">Reopen</button>") && p.html.contains(">Close</button>"));
}

async fn closure_is_confirmed_by_the_reporter(app: TestApp) {
    let reporter = signed_in(&app, "responder").await;
    let r = reporter
        .post(
            "/incidents",
            &[("title", "Need a new laptop"), ("severity", "SEV4")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let room = r.location().to_string();
    let id: i64 = room.trim_start_matches("/incidents/INC-").parse().unwrap();
    let r = reporter
        .post(&format!("{room}/fields"), &[("type", "service_request")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);

    // Someone else closes: that only requests closure, and the room says so.
    let other = signed_in(&app, "responder").await;
    assert_eq!(
        other
            .post(&format!("{room}/status"), &[("status", "resolved")])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let r = other
        .post(&format!("{room}/status"), &[("status", "closed")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("{room}?notice=closure_requested"));
    let p = other.get(r.location()).await;
    assert!(p.html.contains("Closure requested"), "{}", p.html);
    assert!(
        !p.html.contains("Confirm closure"),
        "only the reporter answers"
    );
    assert_eq!(incident(&app, id).await["status"], "resolved");

    // Not the reporter: refused, nothing changes.
    let counts = app.counts().await;
    let r = other
        .post(&format!("{room}/closure"), &[("answer", "confirm")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    assert_eq!(app.counts().await, counts);

    let p = reporter.get(&room).await;
    assert!(
        p.html
            .contains("value=\"confirm\">Confirm closure</button>"),
        "{}",
        p.html
    );
    let r = reporter
        .post(&format!("{room}/closure"), &[("answer", "confirm")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(incident(&app, id).await["status"], "closed");
    assert!(kinds(&app.timeline(id).await).contains(&"incident.closure_confirmed".to_string()));
}

async fn notes_are_escaped_and_links_defused(app: TestApp) {
    let web = signed_in(&app, "responder").await;
    let inc = app.declare(json!({ "title": "XSS" })).await;
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let r = web
        .post(
            &format!("{room}/notes"),
            &[(
                "body",
                "<img src=x onerror=alert(1)> [x](javascript:alert(1))",
            )],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let p = web.get(&room).await;
    assert!(!p.html.contains("<img src=x"), "{}", p.html);
    assert!(
        p.html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        p.html
    );
    assert!(!p.html.contains("href=\"javascript:"), "{}", p.html);
}

async fn refusals_change_nothing(app: TestApp) {
    let inc = app.declare(json!({ "title": "Guarded" })).await;
    let id = inc["id"].as_i64().unwrap();
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let viewer = signed_in(&app, "viewer").await;
    let responder = signed_in(&app, "responder").await;
    let counts = app.counts().await;
    for (path, form) in [
        (format!("{room}/status"), vec![("status", "acknowledged")]),
        (format!("{room}/notes"), vec![("body", "hi")]),
        (format!("{room}/fields"), vec![("title", "Taken over")]),
        (format!("{room}/roles"), vec![("assignee_id", "1")]),
        (
            format!("{room}/related"),
            vec![("kind", "related"), ("number", "1")],
        ),
        (format!("{room}/escalate"), vec![("level", "0")]),
        (format!("{room}/closure"), vec![("answer", "confirm")]),
    ] {
        let r = viewer.post(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "viewer {path}");
        let r = responder.post_raw(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no token {path}");
        let mut forged = vec![("_csrf", "forged")];
        forged.extend(form.iter().cloned());
        assert_eq!(
            responder.post_raw(&path, &forged).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(app.counts().await, counts);
    assert_eq!(incident(&app, id).await["status"], "triggered");

    // A move the lifecycle does not allow: 409 naming the allowed moves, nothing written.
    assert_eq!(app.move_to(id, "resolved").await.status, StatusCode::OK);
    assert_eq!(app.move_to(id, "closed").await.status, StatusCode::OK);
    let counts = app.counts().await;
    let r = responder
        .post(&format!("{room}/status"), &[("status", "acknowledged")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    assert!(r.html.contains("investigating"), "{}", r.html);
    assert_eq!(app.counts().await, counts);
    assert_eq!(incident(&app, id).await["status"], "closed");
    // An unknown incident.
    let r = responder
        .post("/incidents/INC-99999/notes", &[("body", "x")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn attachments_download_from_the_room(app: TestApp) {
    let inc = app.declare(json!({ "title": "With files" })).await;
    let id = inc["id"].as_i64().unwrap();
    let up = app
        .raw(
            reqwest::Method::POST,
            &format!("/api/v1/incidents/{id}/attachments?filename=dump%20<1>.html"),
            Some(&app.admin_token),
            "text/html",
            b"<script>alert(1)</script>".to_vec(),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let aid = up.body["id"].as_i64().unwrap();
    let web = signed_in(&app, "viewer").await;
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let p = web.get(&room).await;
    assert!(
        p.html.contains(&format!(
            "href=\"{room}/attachments/{aid}\" download>dump &#60;1&#62;.html</a>"
        )),
        "{}",
        p.html
    );
    let r = web
        .http
        .get(format!("{}{room}/attachments/{aid}", web.base))
        .header("cookie", &web.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Served from the UI's origin: never with the uploader's type, and sandboxed.
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let policies: Vec<&str> = r
        .headers()
        .get_all("content-security-policy")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(policies.contains(&"sandbox"), "{policies:?}");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().contains_key("content-security-policy"));
    assert_eq!(r.text().await.unwrap(), "<script>alert(1)</script>");

    // A script upload is not a script of this site.
    let up = app
        .raw(
            reqwest::Method::POST,
            &format!("/api/v1/incidents/{id}/attachments?filename=x.js"),
            Some(&app.admin_token),
            "text/javascript",
            b"alert(1)".to_vec(),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let r = web
        .http
        .get(format!(
            "{}{room}/attachments/{}",
            web.base,
            up.body["id"].as_i64().unwrap()
        ))
        .header("cookie", &web.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(r
        .headers()
        .get_all("content-security-policy")
        .iter()
        .any(|v| v == "sandbox"));
}

/// Undoes askama's escaping of attribute values and text.
pub(crate) fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let at = tag.find(&pat)? + pat.len();
    let end = tag[at..].find('"')?;
    Some(unescape(&tag[at..at + end]))
}

fn flag(tag: &str, name: &str) -> bool {
    [" ", ">", "/"]
        .iter()
        .any(|end| tag.contains(&format!(" {name}{end}")))
}

/// What a browser submits for the form with `id` on `html`, unchanged:
/// inputs with their values, textareas (minus the one leading newline the
/// HTML parser drops), and each select's selected options (a single select
/// with none selected posts its first).
pub(crate) fn form_of(html: &str, id: &str) -> Vec<(String, String)> {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("form {id} in {html}"));
    let start = html[..at].rfind("<form").unwrap();
    let end = start + html[start..].find("</form>").unwrap();
    let form = &html[start..end];
    let mut out = Vec::new();
    let mut rest = form;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt..];
        let tag_end = rest.find('>').unwrap() + 1;
        let tag = &rest[..tag_end];
        if tag.starts_with("<input") {
            let kind = attr(tag, "type").unwrap_or_default();
            let skip = matches!(kind.as_str(), "submit" | "button")
                || (matches!(kind.as_str(), "checkbox" | "radio") && !flag(tag, "checked"));
            if let (Some(name), false) = (attr(tag, "name"), skip) {
                out.push((name, attr(tag, "value").unwrap_or_default()));
            }
        } else if tag.starts_with("<textarea") {
            let close = rest.find("</textarea>").unwrap();
            let text = &rest[tag_end..close];
            let text = text.strip_prefix('\n').unwrap_or(text);
            out.push((attr(tag, "name").unwrap(), unescape(text)));
            rest = &rest[close..];
        } else if tag.starts_with("<select") {
            let close = rest.find("</select>").unwrap();
            let name = attr(tag, "name").unwrap();
            let mut options = Vec::new();
            for o in rest[tag_end..close].split("<option").skip(1) {
                let otag = &o[..o.find('>').unwrap() + 1];
                options.push((
                    attr(otag, "value").unwrap_or_default(),
                    flag(otag, "selected"),
                ));
            }
            let chosen: Vec<&(String, bool)> = options.iter().filter(|o| o.1).collect();
            if chosen.is_empty() && !flag(tag, "multiple") {
                if let Some(first) = options.first() {
                    out.push((name.clone(), first.0.clone()));
                }
            }
            for (v, _) in chosen {
                out.push((name.clone(), v.clone()));
            }
            rest = &rest[close..];
        }
        rest = &rest[1..];
    }
    out
}

/// Sets (or adds) the single value of `name` in a scraped form.
pub(crate) fn set(form: &mut Vec<(String, String)>, name: &str, value: &str) {
    form.retain(|(k, _)| k != name);
    form.push((name.to_string(), value.to_string()));
}

/// Posts a scraped form as the browser would (its own token included).
async fn submit(web: &Web, path: &str, form: &[(String, String)]) {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = web.post_raw(path, &pairs).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}: {}", r.html);
}

/// Alice opens the room; Bob raises the severity and assigns Carol; Alice then
/// fixes the title from her stale form, and sets a role from her stale roles
/// form: Bob's changes survive both, and each save records only its own change.
async fn stale_forms_keep_other_changes(app: TestApp) {
    let inc = app
        .declare(json!({ "title": "Checkout 502s", "severity": "SEV2", "labels": ["web"] }))
        .await;
    let id = inc["id"].as_i64().unwrap();
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let alice = signed_in(&app, "responder").await;
    let bob = signed_in(&app, "responder").await;
    let (carol, _) = web_user(&app, "responder").await;
    let alice_page = alice.get(&room).await;
    let bob_page = bob.get(&room).await;

    let mut f = form_of(&bob_page.html, "fields-form");
    set(&mut f, "severity", "SEV1");
    submit(&bob, &format!("{room}/fields"), &f).await;
    let mut f = form_of(&bob_page.html, "roles-form");
    set(&mut f, "assignee_id", &carol.to_string());
    submit(&bob, &format!("{room}/roles"), &f).await;
    let now = incident(&app, id).await;
    assert_eq!(now["severity"], "SEV1");
    assert_eq!(now["assignee_id"], carol);

    // Alice's forms still show SEV2 and nobody assigned.
    let mut f = form_of(&alice_page.html, "fields-form");
    assert!(f.contains(&("severity".into(), "SEV2".into())), "{f:?}");
    set(&mut f, "title", "Checkout returns 502");
    submit(&alice, &format!("{room}/fields"), &f).await;
    let now = incident(&app, id).await;
    assert_eq!(now["title"], "Checkout returns 502");
    assert_eq!(
        now["severity"], "SEV1",
        "a stale form reverted the severity"
    );
    assert_eq!(now["assignee_id"], carol);
    assert_eq!(now["labels"], json!(["web"]));
    let events = app.timeline(id).await;
    let fields: Vec<&str> = events.last().unwrap()["data"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title"], "only the title was written");

    let mut f = form_of(&alice_page.html, "roles-form");
    assert!(f.contains(&("assignee_id".into(), String::new())), "{f:?}");
    set(&mut f, "role.commander", &alice.user_id.to_string());
    submit(&alice, &format!("{room}/roles"), &f).await;
    let now = incident(&app, id).await;
    assert_eq!(now["roles"]["commander"], json!([alice.user_id]));
    assert_eq!(now["assignee_id"], carol, "a stale form unassigned Carol");
    assert_eq!(now["severity"], "SEV1");

    // Bob, still on his old page, names a scribe: Alice's commander stays.
    let mut f = form_of(&bob_page.html, "roles-form");
    set(&mut f, "assignee_id", &carol.to_string());
    set(&mut f, "role.scribe", &bob.user_id.to_string());
    submit(&bob, &format!("{room}/roles"), &f).await;
    let now = incident(&app, id).await;
    assert_eq!(now["roles"]["commander"], json!([alice.user_id]));
    assert_eq!(now["roles"]["scribe"], json!([bob.user_id]));

    // A damaged `orig` is refused by name and changes nothing.
    let counts = app.counts().await;
    let mut f = form_of(&alice_page.html, "fields-form");
    set(&mut f, "orig", "{not json");
    set(&mut f, "title", "Nope");
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = alice.post_raw(&format!("{room}/fields"), &pairs).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);
    assert!(r.html.contains("orig"), "{}", r.html);
    assert_eq!(app.counts().await, counts);
}

/// Two pages drawn before either link: each adds or removes its one link.
async fn stale_link_forms_touch_one_link(app: TestApp) {
    let a = app.declare(json!({ "title": "A" })).await;
    let b = app.declare(json!({ "title": "B" })).await;
    let inc = app.declare(json!({ "title": "Main" })).await;
    let id = inc["id"].as_i64().unwrap();
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let alice = signed_in(&app, "responder").await;
    let bob = signed_in(&app, "responder").await;
    let alice_page = alice.get(&room).await;
    let bob_page = bob.get(&room).await;
    let mut f = form_of(&alice_page.html, "related-form");
    set(&mut f, "kind", "caused_by");
    set(&mut f, "number", a["number"].as_str().unwrap());
    submit(&alice, &format!("{room}/related"), &f).await;
    let mut f = form_of(&bob_page.html, "related-form");
    set(&mut f, "number", b["number"].as_str().unwrap());
    submit(&bob, &format!("{room}/related"), &f).await;
    assert_eq!(
        incident(&app, id).await["related"],
        json!([
            { "kind": "caused_by", "incident_id": a["id"] },
            { "kind": "related", "incident_id": b["id"] },
        ])
    );
    // Removing one link from a page that showed only the other keeps both... but that one.
    let page = alice.get(&room).await;
    assert!(page
        .html
        .contains(&format!("value=\"related:{}\"", b["id"])));
    let r = alice
        .post(
            &format!("{room}/related"),
            &[("unlink", &format!("related:{}", b["id"]))],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(
        incident(&app, id).await["related"],
        json!([{ "kind": "caused_by", "incident_id": a["id"] }])
    );
    // Linking what is already linked writes nothing.
    let before = app.timeline(id).await.len();
    let r = bob
        .post(
            &format!("{room}/related"),
            &[
                ("kind", "caused_by"),
                ("number", a["number"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(app.timeline(id).await.len(), before);
}

/// Labels are one per line (a comma belongs to the label) and textareas keep a
/// leading newline: saving an untouched form changes nothing.
async fn labels_and_text_survive_the_form(app: TestApp) {
    let inc = app
        .declare(json!({ "title": "Labels", "labels": ["team: a, b", "eu"] }))
        .await;
    let id = inc["id"].as_i64().unwrap();
    let r = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            json!({ "description": "\n    indented code\nafter", "root_cause": "\nwhy" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stored = incident(&app, id).await;
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let web = signed_in(&app, "responder").await;
    let p = web.get(&room).await;
    assert!(
        p.html
            .contains("name=\"labels\" rows=\"3\">\nteam: a, b\neu</textarea>"),
        "{}",
        p.html
    );
    assert!(p
        .html
        .contains("name=\"description\">\n\n    indented code"));
    assert!(p.html.contains("name=\"body\" required>\n</textarea>"));
    let before = app.timeline(id).await.len();
    let f = form_of(&p.html, "fields-form");
    submit(&web, &format!("{room}/fields"), &f).await;
    let events = app.timeline(id).await;
    assert_eq!(
        events.len(),
        before,
        "an untouched form saves nothing: {:?}",
        events.last()
    );

    // Changing only the labels keeps the comma inside its label, and the
    // leading newlines of the text fields.
    let mut f = form_of(&p.html, "fields-form");
    set(&mut f, "labels", "team: a, b\r\neu\r\nnew, one\r\n");
    submit(&web, &format!("{room}/fields"), &f).await;
    let now = incident(&app, id).await;
    assert_eq!(now["labels"], json!(["team: a, b", "eu", "new, one"]));
    assert_eq!(now["description"], stored["description"]);
    assert_eq!(now["root_cause"], stored["root_cause"]);
    let p = web.get(&room).await;
    let mut f = form_of(&p.html, "fields-form");
    set(&mut f, "title", "Labels kept");
    submit(&web, &format!("{room}/fields"), &f).await;
    let now = incident(&app, id).await;
    assert_eq!(now["labels"], json!(["team: a, b", "eu", "new, one"]));
    assert_eq!(now["description"], stored["description"]);
}

/// A severity, type or select value no longer configured stays selected (as
/// its own option), so saving another field does not replace it.
async fn unconfigured_values_stay_selected(app: TestApp) {
    let inc = app.declare(json!({ "title": "Old values" })).await;
    let id = inc["id"].as_i64().unwrap();
    // Written under settings that had them; the server's settings do not.
    let mut old = crate::support::test_settings();
    old.severities.push(tocsin_core::settings::SeverityDef {
        name: "SEV0".into(),
        description: String::new(),
    });
    old.custom_fields[0].options.push("ap-south".into());
    old.custom_fields[1].options.push("queue".into());
    let patch = tocsin_core::change::IncidentPatch {
        severity: tocsin_core::change::Patch::Set("SEV0".into()),
        custom_fields: tocsin_core::change::Patch::Set(
            json!({ "region": "ap-south", "components": ["db", "queue"] })
                .as_object()
                .unwrap()
                .clone(),
        ),
        ..Default::default()
    };
    let actor = tocsin_store::Actor {
        user_id: None,
        name: "system".into(),
    };
    app.store
        .update_incident(&old, id, &patch, &actor, chrono::Utc::now())
        .await
        .expect("stored under the old settings");
    let web = signed_in(&app, "responder").await;
    let room = format!("/incidents/{}", inc["number"].as_str().unwrap());
    let p = web.get(&room).await;
    for want in [
        "<option value=\"SEV0\" selected>SEV0 (no longer configured)</option>",
        "<option value=\"ap-south\" selected>ap-south (no longer configured)</option>",
        "<option value=\"queue\" selected>queue (no longer configured)</option>",
    ] {
        assert!(p.html.contains(want), "{want} in {}", p.html);
    }
    let f = form_of(&p.html, "fields-form");
    assert!(f.contains(&("severity".into(), "SEV0".into())), "{f:?}");
    let mut f = f;
    set(&mut f, "title", "Old values kept");
    submit(&web, &format!("{room}/fields"), &f).await;
    let now = incident(&app, id).await;
    assert_eq!(now["title"], "Old values kept");
    assert_eq!(now["severity"], "SEV0");
    assert_eq!(now["custom_fields"]["region"], "ap-south");
    assert_eq!(now["custom_fields"]["components"], json!(["db", "queue"]));
}

crate::both_backends!(
    viewer_sees_the_room_without_actions,
    forms_change_the_incident,
    closure_is_confirmed_by_the_reporter,
    notes_are_escaped_and_links_defused,
    refusals_change_nothing,
    attachments_download_from_the_room,
    stale_forms_keep_other_changes,
    stale_link_forms_touch_one_link,
    labels_and_text_survive_the_form,
    unconfigured_values_stay_selected,
);
