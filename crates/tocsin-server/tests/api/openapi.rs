//! The OpenAPI document: well-formed, and it describes exactly the routes served.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::roles::operations;
use crate::support::TestApp;

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().expect("$ref is a string"));
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

async fn document_is_valid_and_complete(app: TestApp) {
    let r = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes["token"]["type"], "http");
    assert_eq!(schemes["token"]["scheme"], "bearer");

    let mut operation_ids = HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{path}");
        let template: HashSet<String> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        for (method, op) in item.as_object().unwrap() {
            assert!(
                ["get", "post", "put", "patch", "delete"].contains(&method.as_str()),
                "{method} {path}"
            );
            let what = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{what} has no operationId"));
            assert!(
                operation_ids.insert(id.to_string()),
                "duplicate operationId {id}"
            );
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{what} documents no response"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{what} has no tag"
            );
            assert!(
                op["summary"].is_string() || op["description"].is_string(),
                "{what} is not described"
            );
            let declared: HashSet<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(
                declared, template,
                "{what}: path parameters and template differ"
            );
            if let Some(sec) = op["security"].as_array() {
                for req in sec {
                    for (scheme, scopes) in req.as_object().unwrap() {
                        assert!(
                            schemes.contains_key(scheme),
                            "{what} uses unknown scheme {scheme}"
                        );
                        for s in scopes.as_array().unwrap() {
                            assert!(
                                ["viewer", "responder", "admin"].contains(&s.as_str().unwrap()),
                                "{what}: scope {s}"
                            );
                        }
                    }
                }
            } else {
                assert!(
                    !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json",
                    "{what} has no security"
                );
            }
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "$ref {r} does not resolve"
        );
    }
}

async fn every_documented_route_is_served(app: TestApp) {
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .body;
    for (method, path, _) in operations(&doc) {
        let url = path
            .replace(['{', '}'], "")
            .split('/')
            .map(|s| if s.ends_with("id") { "999999" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let r = app
            .call(method.clone(), &url, Some(&app.admin_token), None)
            .await;
        assert_ne!(
            r.code(),
            "no_route",
            "{method} {path} is documented but not routed"
        );
        assert_ne!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed"
        );
    }
    let r = app.get("/api/v1/nothing-here").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "no_route"));
}

/// Every page route of the web UI (`.route("/…"` in src/web) is listed in docs/ui.md.
#[test]
fn every_page_is_in_the_ui_docs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("../../docs/ui.md")).unwrap();
    let mut stack = vec![root.join("src/web")];
    let mut pages = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split(".route(").skip(1) {
                    let path = part.trim_start().trim_start_matches('"');
                    let path = &path[..path.find('"').unwrap()];
                    if path.starts_with("/assets/") {
                        continue;
                    }
                    pages += 1;
                    assert!(
                        docs.contains(&format!("`{path}`")),
                        "{path} (in {}) is not in docs/ui.md",
                        p.display()
                    );
                }
            }
        }
    }
    assert!(pages > 5, "found {pages} pages");
}

#[test]
fn every_route_goes_through_the_documented_router() {
    // Routes are registered only with utoipa-axum's routes!(), which documents them;
    // a plain .route() would add an undocumented one. Count both in the source.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut annotated = 0;
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                // The web UI's pages are not API; docs/ui.md lists them (the test below).
                if !p.ends_with("web") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(
                    !text.contains(".route("),
                    "{} registers a route outside routes!()",
                    p.display()
                );
                assert!(
                    !text.contains(".nest("),
                    "{} nests a router outside routes!()",
                    p.display()
                );
                annotated += text.matches("#[utoipa::path(").count();
            }
        }
    }
    let doc = tocsin_server::openapi();
    let documented: usize = doc
        .paths
        .paths
        .values()
        .map(|item| {
            [&item.get, &item.post, &item.put, &item.patch, &item.delete]
                .iter()
                .filter(|o| o.is_some())
                .count()
        })
        .sum();
    assert_eq!(
        annotated, documented,
        "every annotated handler is registered, and only those"
    );
}

crate::both_backends!(
    document_is_valid_and_complete,
    every_documented_route_is_served
);

#[test]
fn docs_api_md_lists_every_api_route_with_its_role() {
    // docs/api.md's routes table is generated from this document; a route added or
    // a role changed without regenerating it fails here.
    let md = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md"),
    )
    .unwrap();
    let doc = serde_json::to_value(tocsin_server::openapi()).unwrap();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let role = op["security"]
                .as_array()
                .and_then(|s| s.iter().find_map(|r| r["token"][0].as_str()))
                .unwrap_or("public");
            let row = format!("| {} | `{path}` | {role} |", method.to_uppercase());
            if !md.contains(&row) {
                missing.push(row);
            }
        }
    }
    assert!(missing.is_empty(), "docs/api.md lacks: {missing:#?}");
}
