//! The configuration forms as the API then shows what they did: a new page,
//! settings, groups, components (only what a form changed is saved), the
//! responder's status change recorded in history, templates, subscribers
//! (a webhook's secret shown once) and the logo.

use reqwest::StatusCode;
use serde_json::json;

use super::{api, api_component, api_page, id, ok, upload_logo, PNG};
use crate::both_backends;
use crate::support::TestApp;
use crate::web_room::{form_of, set};
use crate::web_support::{signed_in, Web};

both_backends!(
    admins_create_pages_and_refusals_name_the_field,
    settings_save_only_what_the_form_changed,
    groups_and_components_through_their_forms,
    responders_move_a_status_into_its_history,
    templates_and_subscribers_through_their_forms,
    the_logo_is_uploaded_checked_and_removed
);

/// Posts a scraped form as the browser would; returns the answer.
async fn send(web: &Web, path: &str, form: &[(String, String)]) -> crate::web_support::Page {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    web.post_raw(path, &pairs).await
}

async fn admins_create_pages_and_refusals_name_the_field(app: TestApp) {
    let admin = signed_in(&app, "admin").await;
    let before = app.counts().await;
    // A bad slug comes back with what was typed, naming the field.
    let r = admin
        .post(
            "/status-pages",
            &[
                ("name", "Acme"),
                ("slug", "Not A Slug"),
                ("time_zone", "Europe/Berlin"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html.contains("slug: `Not A Slug` is not a slug"),
        "{}",
        r.html
    );
    assert!(r.html.contains("value=\"Not A Slug\""));
    assert!(r.html.contains("value=\"Europe/Berlin\""));
    let r = admin
        .post(
            "/status-pages",
            &[
                ("name", "Acme"),
                ("slug", "acme"),
                ("time_zone", "Mars/Base"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.html.contains("time_zone"), "{}", r.html);
    assert_eq!(app.counts().await, before);

    let r = admin
        .post(
            "/status-pages",
            &[
                ("name", "Acme"),
                ("slug", "acme"),
                ("visibility", "internal"),
                ("time_zone", "Europe/Berlin"),
                ("domain", "Status.Acme.example"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let pages = api(&app, "/api/v1/status-pages").await;
    let p = &pages.as_array().unwrap()[0];
    assert_eq!(r.location(), format!("/status-pages/{}", id(p)));
    assert_eq!(p["slug"], "acme");
    assert_eq!(p["visibility"], "internal");
    assert_eq!(p["time_zone"], "Europe/Berlin");
    assert_eq!(p["domain"], "status.acme.example");
    // The same slug again: 409, naming it, on the form.
    let before = app.counts().await;
    let r = admin
        .post("/status-pages", &[("name", "Other"), ("slug", "acme")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.html);
    assert!(r.html.contains("slug"), "{}", r.html);
    assert_eq!(app.counts().await, before);
    let list = admin.get("/status-pages").await.html;
    assert!(list.contains(&format!("href=\"/status-pages/{}\">Acme</a>", id(p))));
    assert!(list.contains("<span class=\"badge\">internal</span>"));
    assert!(list.contains("All Systems Operational"));
}

async fn settings_save_only_what_the_form_changed(app: TestApp) {
    let page = api_page(&app, "acme", json!({ "time_zone": "Europe/Berlin" })).await;
    let alice = signed_in(&app, "admin").await;
    let path = format!("/status-pages/{page}/settings");
    let stale = form_of(
        &alice.get(&format!("/status-pages/{page}")).await.html,
        "settings-form",
    );
    // Bob gives the page a domain and turns subscriptions off meanwhile.
    ok(
        app.patch(
            &format!("/api/v1/status-pages/{page}"),
            json!({ "domain": "status.acme.example", "allow_subscribers": false }),
        )
        .await,
        StatusCode::OK,
    );
    let events = app.counts().await;
    // Alice's untouched form saves nothing.
    let r = send(&alice, &path, &stale).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(app.counts().await, events, "no change, no event");
    // Her stale form renames the page and keeps Bob's domain and choice.
    let mut form = stale.clone();
    set(&mut form, "name", "Acme Cloud");
    set(&mut form, "brand_color", "#aa0000");
    let r = send(&alice, &path, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let p = api(&app, &format!("/api/v1/status-pages/{page}")).await;
    assert_eq!(p["name"], "Acme Cloud");
    assert_eq!(p["brand_color"], "#aa0000");
    assert_eq!(p["domain"], "status.acme.example", "Bob's domain stays");
    assert_eq!(p["allow_subscribers"], false, "Bob's choice stays");
    assert_eq!(p["time_zone"], "Europe/Berlin");

    // A fresh form clears the domain and ticks subscriptions back on.
    let mut form = form_of(
        &alice.get(&format!("/status-pages/{page}")).await.html,
        "settings-form",
    );
    set(&mut form, "domain", "");
    set(&mut form, "allow_subscribers", "1");
    assert_eq!(
        send(&alice, &path, &form).await.status,
        StatusCode::SEE_OTHER
    );
    let p = api(&app, &format!("/api/v1/status-pages/{page}")).await;
    assert!(p["domain"].is_null());
    assert_eq!(p["allow_subscribers"], true);

    // Refused: the form comes back with the typed values and the field named.
    let before = app.counts().await;
    let mut form = form_of(
        &alice.get(&format!("/status-pages/{page}")).await.html,
        "settings-form",
    );
    set(&mut form, "brand_color", "red");
    set(&mut form, "name", "Typed name");
    let r = send(&alice, &path, &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html.contains("brand_color: `red` is not a colour"),
        "{}",
        r.html
    );
    assert!(r.html.contains("value=\"Typed name\""));
    assert!(
        r.html.contains("href=\"#settings\""),
        "the summary links the form"
    );
    assert_eq!(app.counts().await, before);
    assert_eq!(
        api(&app, &format!("/api/v1/status-pages/{page}")).await["name"],
        "Acme Cloud"
    );
}

async fn groups_and_components_through_their_forms(app: TestApp) {
    let page = api_page(&app, "acme", json!({})).await;
    let eu = ok(
        app.post("/api/v1/services", json!({ "name": "eu-api" }))
            .await,
        StatusCode::CREATED,
    );
    let us = ok(
        app.post("/api/v1/services", json!({ "name": "us-api" }))
            .await,
        StatusCode::CREATED,
    );
    let admin = signed_in(&app, "admin").await;
    let base = format!("/status-pages/{page}");

    let r = admin
        .post(
            &format!("{base}/groups"),
            &[("name", "Europe"), ("position", "2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let groups = api(
        &app,
        &format!("/api/v1/status-pages/{page}/component-groups"),
    )
    .await;
    let group = id(&groups[0]);
    assert_eq!(groups[0]["name"], "Europe");
    assert_eq!(groups[0]["position"], 2);
    assert_eq!(r.location(), format!("{base}#group-{group}"));

    // The new-component form: group, services as checkboxes, starting status.
    let mut form = form_of(&admin.get(&base).await.html, "cnew-form");
    set(&mut form, "name", "API");
    set(&mut form, "group_id", &group.to_string());
    set(&mut form, "status", "degraded_performance");
    form.push(("service_ids".into(), id(&us).to_string()));
    form.push(("service_ids".into(), id(&eu).to_string()));
    form.retain(|(k, _)| k != "only_show_if_degraded");
    let r = send(&admin, &format!("{base}/components"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let cs = api(&app, &format!("/api/v1/status-pages/{page}/components")).await;
    let c = cs[0].clone();
    let cid = id(&c);
    assert_eq!(c["name"], "API");
    assert_eq!(c["group_id"], group);
    assert_eq!(c["status"], "degraded_performance");
    assert_eq!(c["show_uptime"], true, "ticked by default");
    assert_eq!(c["only_show_if_degraded"], false);
    let mut want = vec![id(&eu), id(&us)];
    want.sort();
    assert_eq!(c["service_ids"], json!(want));

    // Shown in its group, with its status as shape and word.
    let html = admin.get(&base).await.html;
    let at = html.find(&format!("id=\"group-{group}\"")).unwrap();
    let comp = html.find(&format!("id=\"component-{cid}\"")).unwrap();
    assert!(comp > at, "inside its group");
    assert!(html.contains("<span class=\"cs cs-degraded_performance\">Degraded performance</span>"));

    // A stale edit form changes only what it changed: Bob renamed the
    // component meanwhile, Alice unlinks a service and moves it out of the group.
    let alice_form = form_of(&html, &format!("c{cid}-form"));
    ok(
        app.patch(
            &format!("/api/v1/status-components/{cid}"),
            json!({ "name": "Public API" }),
        )
        .await,
        StatusCode::OK,
    );
    let mut form = alice_form.clone();
    form.retain(|(k, v)| !(k == "service_ids" && *v == id(&eu).to_string()));
    set(&mut form, "group_id", "");
    let path = format!("{base}/components/{cid}");
    let r = send(&admin, &path, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let c = api(&app, &format!("/api/v1/status-components/{cid}")).await;
    assert_eq!(c["name"], "Public API", "Bob's rename stays");
    assert_eq!(c["service_ids"], json!([id(&us)]));
    assert!(c["group_id"].is_null());
    assert_eq!(
        c["status"], "degraded_performance",
        "the edit form leaves the status"
    );

    // Unticking every service and the uptime box.
    let mut form = form_of(&admin.get(&base).await.html, &format!("c{cid}-form"));
    form.retain(|(k, _)| k != "service_ids" && k != "show_uptime");
    assert_eq!(
        send(&admin, &path, &form).await.status,
        StatusCode::SEE_OTHER
    );
    let c = api(&app, &format!("/api/v1/status-components/{cid}")).await;
    assert_eq!(c["service_ids"], json!([]));
    assert_eq!(c["show_uptime"], false);

    // Refused: an empty name, the form shown again open with its message.
    let before = app.counts().await;
    let mut form = form_of(&admin.get(&base).await.html, &format!("c{cid}-form"));
    set(&mut form, "name", "  ");
    set(&mut form, "description", "typed words");
    let r = send(&admin, &path, &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html
            .contains("Component “Public API”: name: must not be empty"),
        "the summary says which form: {}",
        r.html
    );
    assert!(r.html.contains(">\ntyped words</textarea>"));
    assert!(r.html.contains(&format!("href=\"#component-{cid}\"")));
    assert_eq!(app.counts().await, before);

    // A group edit and deletion: its components stay, ungrouped.
    ok(
        app.patch(
            &format!("/api/v1/status-components/{cid}"),
            json!({ "group_id": group }),
        )
        .await,
        StatusCode::OK,
    );
    let mut form = form_of(&admin.get(&base).await.html, &format!("g{group}-form"));
    set(&mut form, "name", "EU");
    let r = send(&admin, &format!("{base}/groups/{group}"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(
        api(&app, &format!("/api/v1/status-component-groups/{group}")).await["name"],
        "EU"
    );
    let r = admin
        .post(&format!("{base}/groups/{group}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(api(&app, &format!("/api/v1/status-components/{cid}")).await["group_id"].is_null());

    // A component of another page is not this page's to change.
    let other = api_page(&app, "other", json!({})).await;
    let foreign = api_component(&app, other, json!({ "name": "Foreign" })).await;
    let r = admin
        .post(&format!("{base}/components/{foreign}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = admin
        .post(&format!("{base}/components/{cid}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/api/v1/status-components/{cid}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/status-components/{foreign}"))
            .await
            .status,
        StatusCode::OK
    );
}

async fn responders_move_a_status_into_its_history(app: TestApp) {
    let page = api_page(&app, "acme", json!({})).await;
    let cid = api_component(&app, page, json!({ "name": "API" })).await;
    let responder = signed_in(&app, "responder").await;
    let base = format!("/status-pages/{page}");
    let html = responder.get(&base).await.html;
    assert!(
        !html.contains(&format!("id=\"c{cid}-form\"")),
        "no edit form"
    );
    let form = form_of(&html, &format!("s{cid}-status"));
    // Unchanged: nothing recorded.
    let before = app.counts().await;
    let path = format!("{base}/components/{cid}/status");
    assert_eq!(
        send(&responder, &path, &form).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.counts().await, before);
    let mut form = form;
    set(&mut form, "status", "major_outage");
    let r = send(&responder, &path, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(r.location(), format!("{base}#component-{cid}"));
    let history = api(&app, &format!("/api/v1/status-components/{cid}/history")).await;
    let h: Vec<(&str, bool)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["status"].as_str().unwrap(), p["ended_at"].is_null()))
        .collect();
    assert_eq!(h, vec![("operational", false), ("major_outage", true)]);
    let html = responder.get(&base).await.html;
    assert!(html.contains("<span class=\"cs cs-major_outage\">Major outage</span>"));
    assert!(
        html.contains("Major Service Outage"),
        "the page's indicator"
    );
    // A responder may not configure: the edit form's route is the admin's.
    let r = responder
        .post(&format!("{base}/components/{cid}"), &[("name", "Renamed")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A status that is not one is named.
    let r = responder.post(&path, &[("status", "on_fire")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.html
            .contains("status: `on_fire` is not a component status"),
        "{}",
        r.html
    );
}

async fn templates_and_subscribers_through_their_forms(app: TestApp) {
    let page = api_page(&app, "acme", json!({})).await;
    let cid = api_component(&app, page, json!({ "name": "API" })).await;
    let admin = signed_in(&app, "admin").await;
    let base = format!("/status-pages/{page}");

    // Templates: a maintenance status for an incident template is named.
    let before = app.counts().await;
    let r = admin
        .post(
            &format!("{base}/templates"),
            &[
                ("kind", "incident"),
                ("name", "Slow"),
                ("title", "Slow responses"),
                ("status", "completed"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html
            .contains("status: `completed` is not a status of an incident"),
        "{}",
        r.html
    );
    assert_eq!(app.counts().await, before);
    let r = admin
        .post(
            &format!("{base}/templates"),
            &[
                ("kind", "incident"),
                ("name", "Slow"),
                ("title", "Slow responses"),
                ("body", "We are looking into **slow** responses."),
                ("status", "investigating"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let ts = api(&app, &format!("/api/v1/status-pages/{page}/templates")).await;
    let tid = id(&ts[0]);
    assert_eq!(ts[0]["title"], "Slow responses");
    assert_eq!(ts[0]["status"], "investigating");
    // Editing: only what changed; clearing the suggested status.
    let mut form = form_of(&admin.get(&base).await.html, &format!("t{tid}-form"));
    set(&mut form, "status", "");
    let r = send(&admin, &format!("{base}/templates/{tid}"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let t = api(&app, &format!("/api/v1/status-templates/{tid}")).await;
    assert!(t["status"].is_null());
    assert_eq!(
        t["body"], "We are looking into **slow** responses.",
        "kept as it was"
    );

    // Subscribers: an email added as confirmed, following one component.
    let r = admin
        .post(
            &format!("{base}/subscribers"),
            &[
                ("kind", "email"),
                ("address", "ops@example.com"),
                ("component_ids", &cid.to_string()),
                ("confirmed", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let subs =
        api(&app, &format!("/api/v1/status-pages/{page}/subscribers")).await["items"].clone();
    assert_eq!(subs[0]["address"], "ops@example.com");
    assert_eq!(subs[0]["confirmed"], true);
    assert_eq!(subs[0]["component_ids"], json!([cid]));
    // A malformed address is refused by name, with what was typed.
    let before = app.counts().await;
    let r = admin
        .post(
            &format!("{base}/subscribers"),
            &[("kind", "email"), ("address", "not-an-address")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(r.html.contains("address: "), "{}", r.html);
    assert!(r.html.contains("value=\"not-an-address\""));
    assert_eq!(app.counts().await, before);
    // A webhook: its secret on this answer only.
    let r = admin
        .post(
            &format!("{base}/subscribers"),
            &[
                ("kind", "webhook"),
                ("address", "https://hooks.example.com/status"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.html);
    let needle = "id=\"new-secret-value\" class=\"mono secret-value\" readonly value=\"";
    let at = r.html.find(needle).expect("the secret") + needle.len();
    let secret = r.html[at..].split('"').next().unwrap().to_string();
    assert!(secret.len() >= 16, "{secret}");
    let again = admin.get(&base).await.html;
    assert!(!again.contains(&secret), "shown once");
    assert!(again.contains("<strong>2</strong> confirmed · <strong>0</strong> waiting"));
    assert!(again.contains("https://hooks.example.com/status"));
    // Removed.
    let subs =
        api(&app, &format!("/api/v1/status-pages/{page}/subscribers")).await["items"].clone();
    let sid = id(&subs[0]);
    let r = admin
        .post(&format!("{base}/subscribers/{sid}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let subs =
        api(&app, &format!("/api/v1/status-pages/{page}/subscribers")).await["items"].clone();
    assert_eq!(subs.as_array().unwrap().len(), 1);
    assert_ne!(id(&subs[0]), sid);
    // And templates are deleted.
    let r = admin
        .post(&format!("{base}/templates/{tid}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/api/v1/status-templates/{tid}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn the_logo_is_uploaded_checked_and_removed(app: TestApp) {
    let page = api_page(&app, "acme", json!({})).await;
    let admin = signed_in(&app, "admin").await;
    let viewer = signed_in(&app, "viewer").await;
    let before = app.counts().await;
    // Not an image of its type, or a type that can carry script: refused on the form.
    let r = upload_logo(&admin, page, &admin.csrf, "image/png", b"GIF89a....").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html.contains("logo: the logo is not a image/png image"),
        "{}",
        r.html
    );
    let r = upload_logo(
        &admin,
        page,
        &admin.csrf,
        "image/svg+xml",
        b"<svg onload=alert(1)/>",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(r.html.contains("not SVG"), "{}", r.html);
    let r = upload_logo(&admin, page, &admin.csrf, "image/png", b"").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.html.contains("logo: choose an image file"));
    // Just over the limit: refused on the form; far over: refused unread.
    let mut over = PNG.to_vec();
    over.resize(256 * 1024 + 1, 0);
    let r = upload_logo(&admin, page, &admin.csrf, "image/png", &over).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.html);
    assert!(
        r.html.contains("logo: the image is larger than 256 KiB"),
        "{}",
        r.html
    );
    let big = vec![0u8; 300 * 1024];
    let r = upload_logo(&admin, page, &admin.csrf, "image/png", &big).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(app.counts().await, before);
    assert!(api(&app, &format!("/api/v1/status-pages/{page}")).await["logo"].is_null());

    let r = upload_logo(&admin, page, &admin.csrf, "image/png", PNG).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let p = api(&app, &format!("/api/v1/status-pages/{page}")).await;
    assert_eq!(p["logo"]["content_type"], "image/png");
    // Shown on the page, served with its type, never sniffed.
    let html = viewer.get(&format!("/status-pages/{page}")).await.html;
    assert!(html.contains(&format!(
        "src=\"/status-pages/{page}/logo?v={}\"",
        p["logo"]["tag"].as_str().unwrap()
    )));
    let img = viewer
        .http
        .get(format!("{}/status-pages/{page}/logo", viewer.base))
        .header("cookie", &viewer.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(img.status(), StatusCode::OK);
    assert_eq!(img.headers()["content-type"], "image/png");
    assert_eq!(img.headers()["x-content-type-options"], "nosniff");
    assert_eq!(img.bytes().await.unwrap().as_ref(), PNG);
    // Removed.
    let r = admin
        .post(&format!("/status-pages/{page}/logo/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(api(&app, &format!("/api/v1/status-pages/{page}")).await["logo"].is_null());
    assert_eq!(
        viewer
            .get(&format!("/status-pages/{page}/logo"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
