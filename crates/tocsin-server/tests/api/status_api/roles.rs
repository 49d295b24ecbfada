//! Who may do what with status pages: viewers read, responders publish and
//! move a component's status, admins configure. A refusal is 403 `forbidden`
//! and writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{component, id, now, ok, page};
use crate::both_backends;
use crate::support::TestApp;

both_backends!(viewers_read_responders_publish_admins_configure);

async fn viewers_read_responders_publish_admins_configure(app: TestApp) {
    let p = page(&app, "roles").await;
    let c = component(&app, p, "API", &[]).await;
    let g = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/component-groups"),
            json!({ "name": "EU" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let t = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/templates"),
            json!({ "name": "t", "title": "T" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let post = ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/incidents"),
            json!({ "name": "Down", "body": "Looking." }),
        )
        .await,
        StatusCode::CREATED,
    );
    let (post_id, update_id) = (id(&post), id(&post["updates"][0]));
    let s = id(&ok(
        app.post(
            &format!("/api/v1/status-pages/{p}/subscribers"),
            json!({ "kind": "email", "address": "a@example.com" }),
        )
        .await,
        StatusCode::CREATED,
    ));
    let inc = id(&app.declare(json!({ "title": "internal" })).await);
    let (_, viewer) = app.user_with_role("viewer").await;
    let (_, responder) = app.user_with_role("responder").await;

    for path in [
        "/api/v1/status-pages".to_string(),
        format!("/api/v1/status-pages/{p}"),
        format!("/api/v1/status-pages/{p}/component-groups"),
        format!("/api/v1/status-component-groups/{g}"),
        format!("/api/v1/status-pages/{p}/components"),
        format!("/api/v1/status-components/{c}"),
        format!("/api/v1/status-components/{c}/history"),
        format!("/api/v1/status-pages/{p}/posts"),
        format!("/api/v1/status-posts/{post_id}"),
        format!("/api/v1/status-pages/{p}/templates"),
        format!("/api/v1/status-templates/{t}"),
        format!("/api/v1/incidents/{inc}/status-proposals"),
        format!("/api/v1/incidents/{inc}/status-posts"),
    ] {
        let r = app.call(Method::GET, &path, Some(&viewer), None).await;
        assert_eq!(r.status, StatusCode::OK, "viewer reads {path}: {}", r.body);
    }

    let from = now(&app) + chrono::Duration::days(1);
    let maintenance = json!({ "name": "M", "body": "b", "scheduled_for": from,
                              "scheduled_until": from + chrono::Duration::hours(1) });
    let (v, r) = (viewer.as_str(), responder.as_str());
    #[rustfmt::skip]
    let refused: Vec<(&str, Method, String, Option<Value>)> = vec![
        (v, Method::POST, "/api/v1/status-pages".into(), Some(json!({ "slug": "v", "name": "V" }))),
        (r, Method::POST, "/api/v1/status-pages".into(), Some(json!({ "slug": "r", "name": "R" }))),
        (r, Method::PATCH, format!("/api/v1/status-pages/{p}"), Some(json!({ "name": "R" }))),
        (r, Method::DELETE, format!("/api/v1/status-pages/{p}"), None),
        (r, Method::DELETE, format!("/api/v1/status-pages/{p}/logo"), None),
        (r, Method::POST, format!("/api/v1/status-pages/{p}/component-groups"), Some(json!({ "name": "G" }))),
        (r, Method::PATCH, format!("/api/v1/status-component-groups/{g}"), Some(json!({ "name": "G" }))),
        (r, Method::DELETE, format!("/api/v1/status-component-groups/{g}"), None),
        (r, Method::POST, format!("/api/v1/status-pages/{p}/components"), Some(json!({ "name": "C" }))),
        // A responder moves a status, nothing else; not even along with a status.
        (r, Method::PATCH, format!("/api/v1/status-components/{c}"), Some(json!({ "name": "Renamed" }))),
        (r, Method::PATCH, format!("/api/v1/status-components/{c}"), Some(json!({ "status": "major_outage", "name": "Renamed" }))),
        (r, Method::PATCH, format!("/api/v1/status-components/{c}"), Some(json!({ "status": "major_outage", "group_id": null }))),
        (r, Method::PATCH, format!("/api/v1/status-components/{c}"), Some(json!({ "service_ids": [] }))),
        (r, Method::DELETE, format!("/api/v1/status-components/{c}"), None),
        (v, Method::PATCH, format!("/api/v1/status-components/{c}"), Some(json!({ "status": "major_outage" }))),
        (v, Method::POST, format!("/api/v1/status-pages/{p}/incidents"), Some(json!({ "name": "V", "body": "b" }))),
        (v, Method::POST, format!("/api/v1/status-pages/{p}/maintenances"), Some(maintenance.clone())),
        (v, Method::POST, format!("/api/v1/status-posts/{post_id}/updates"), Some(json!({ "status": "resolved", "body": "b" }))),
        (v, Method::PATCH, format!("/api/v1/status-posts/{post_id}"), Some(json!({ "name": "V" }))),
        (v, Method::PATCH, format!("/api/v1/status-updates/{update_id}"), Some(json!({ "body": "V" }))),
        (r, Method::DELETE, format!("/api/v1/status-posts/{post_id}"), None),
        (r, Method::POST, format!("/api/v1/status-pages/{p}/templates"), Some(json!({ "name": "r", "title": "R" }))),
        (r, Method::PATCH, format!("/api/v1/status-templates/{t}"), Some(json!({ "title": "R" }))),
        (r, Method::DELETE, format!("/api/v1/status-templates/{t}"), None),
        (r, Method::GET, format!("/api/v1/status-pages/{p}/subscribers"), None),
        (r, Method::POST, format!("/api/v1/status-pages/{p}/subscribers"), Some(json!({ "kind": "email", "address": "r@example.com" }))),
        (r, Method::DELETE, format!("/api/v1/status-subscribers/{s}"), None),
    ];
    let before = app.counts().await;
    for (token, method, path, body) in refused {
        let what = format!("{method} {path} {}", body.clone().unwrap_or_default());
        let r = app.call(method, &path, Some(token), body).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{what}: {}",
            r.body
        );
    }
    let r = app
        .raw(
            Method::PUT,
            &format!("/api/v1/status-pages/{p}/logo"),
            Some(&responder),
            "image/png",
            b"\x89PNG\r\n\x1a\n".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(app.counts().await, before, "refusals wrote nothing");
    assert_eq!(
        app.get(&format!("/api/v1/status-components/{c}"))
            .await
            .body["name"],
        "API"
    );

    // What a responder may do.
    let as_responder = |method: Method, path: String, body: Value| {
        let (app, token) = (&app, responder.as_str());
        async move { app.call(method, &path, Some(token), Some(body)).await }
    };
    let moved = ok(
        as_responder(
            Method::PATCH,
            format!("/api/v1/status-components/{c}"),
            json!({ "status": "partial_outage" }),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(moved["status"], "partial_outage");
    let history = app
        .get(&format!("/api/v1/status-components/{c}/history"))
        .await
        .body;
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    for (method, path, body, want) in [
        (
            Method::POST,
            format!("/api/v1/status-pages/{p}/incidents"),
            json!({ "name": "R", "body": "b" }),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            format!("/api/v1/status-pages/{p}/maintenances"),
            maintenance,
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            format!("/api/v1/status-posts/{post_id}/updates"),
            json!({ "status": "identified", "body": "b" }),
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            format!("/api/v1/status-posts/{post_id}"),
            json!({ "impact": "minor" }),
            StatusCode::OK,
        ),
        (
            Method::PATCH,
            format!("/api/v1/status-updates/{update_id}"),
            json!({ "body": "Still looking." }),
            StatusCode::OK,
        ),
    ] {
        let r = as_responder(method.clone(), path.clone(), body).await;
        assert_eq!(r.status, want, "{method} {path}: {}", r.body);
    }
}
