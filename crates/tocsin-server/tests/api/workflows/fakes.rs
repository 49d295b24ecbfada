//! Local stand-ins for Jira, GitHub, Slack and Zoom that check each request
//! as the real API would (path, method, credentials, content type, required
//! fields and their JSON shapes) and answer with the documented shapes.
//! A request the real API would refuse is refused the same way and also
//! listed in `problems`, which tests expect empty.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::response::IntoResponse;
use base64::Engine;
use serde_json::{json, Value};

pub const JIRA_EMAIL: &str = "tocsin-bot@acme.example";
pub const JIRA_TOKEN: &str = "jira-Tok3n-QWERTY-98765";
pub const GITHUB_TOKEN: &str = "ghp_GitHubT0ken-ASDFG-4321";
pub const SLACK_TOKEN: &str = "xoxb-1111-SlackB0t-ZXCVB";
pub const ZOOM_ACCOUNT: &str = "acct-zoom-1";
pub const ZOOM_CLIENT: &str = "zoom-client-id";
pub const ZOOM_SECRET: &str = "zoomCl1entS3cret-POIUY";
/// The access token the fake Zoom hands out: it must not be kept either.
pub const ZOOM_ACCESS: &str = "zoom-Acc3ss-T0ken-LKJHG";
/// The host key in Zoom's `start_url`: never to be kept.
pub const ZOOM_HOST_KEY: &str = "zakHostKey-MNBVC";

/// Which API a fake plays.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Service {
    Jira,
    Github,
    Slack,
    Zoom,
}

/// One request received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// What a fake is told to do besides answering well.
#[derive(Default)]
pub struct Script {
    /// Path → HTTP statuses to answer next (errors in the API's shape).
    pub statuses: HashMap<String, VecDeque<u16>>,
    /// Slack method → `error` codes to answer next with `ok: false`.
    pub slack_errors: HashMap<String, VecDeque<String>>,
    /// Slack channel names that exist.
    pub channels: BTreeSet<String>,
    /// Slack channel ids created → name.
    pub channel_ids: BTreeMap<String, String>,
    /// Slack users: email → id.
    pub slack_users: BTreeMap<String, String>,
    /// Jira issues created so far.
    pub issues: u32,
}

/// A fake API server on 127.0.0.1.
#[derive(Clone)]
pub struct FakeApi {
    pub base: String,
    service: Service,
    calls: Arc<Mutex<Vec<Call>>>,
    problems: Arc<Mutex<Vec<String>>>,
    pub script: Arc<Mutex<Script>>,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

type Answer = (u16, Value, Vec<(&'static str, String)>);

impl FakeApi {
    pub async fn start(service: Service) -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeApi {
            base: format!("http://{}", listener.local_addr().unwrap()),
            service,
            calls: Default::default(),
            problems: Default::default(),
            script: Default::default(),
        };
        let me = fake.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let me = me.clone();
            async move { me.answer(req).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Requests to `path`.
    pub fn to(&self, path: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == path)
            .collect()
    }

    /// Requests the real API would have refused.
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }

    /// Answers the next requests to `path` with these HTTP statuses.
    pub fn fail_with(&self, path: &str, statuses: &[u16]) {
        self.script
            .lock()
            .unwrap()
            .statuses
            .insert(path.into(), statuses.iter().copied().collect());
    }

    /// Answers the next calls of a Slack method with `ok: false` and `error`.
    pub fn slack_error(&self, method: &str, errors: &[&str]) {
        self.script.lock().unwrap().slack_errors.insert(
            method.into(),
            errors.iter().map(|e| e.to_string()).collect(),
        );
    }

    async fn answer(&self, req: Request) -> axum::response::Response {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let query = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .map(|b| String::from_utf8_lossy(&b).to_string())
            .unwrap_or_default();
        let call = Call {
            method,
            path,
            query,
            headers,
            body,
        };
        self.calls.lock().unwrap().push(call.clone());
        let scripted = self
            .script
            .lock()
            .unwrap()
            .statuses
            .get_mut(&call.path)
            .and_then(|q| q.pop_front());
        let (status, body, extra) = match scripted {
            Some(s) => self.scripted(s),
            None => match self.service {
                Service::Jira => self.jira(&call),
                Service::Github => self.github(&call),
                Service::Slack => self.slack(&call),
                Service::Zoom => self.zoom(&call),
            },
        };
        let mut resp = (
            axum::http::StatusCode::from_u16(status).unwrap(),
            axum::Json(body),
        )
            .into_response();
        for (k, v) in extra {
            resp.headers_mut().insert(k, v.parse().unwrap());
        }
        resp
    }

    fn scripted(&self, status: u16) -> Answer {
        let retry = if status == 429 {
            vec![("retry-after", "30".to_string())]
        } else {
            vec![]
        };
        let body = match self.service {
            Service::Jira => {
                json!({ "errorMessages": [format!("Internal server error ({status})")], "errors": {} })
            }
            Service::Github | Service::Zoom => json!({ "message": format!("status {status}") }),
            Service::Slack => json!({ "ok": false, "error": "ratelimited" }),
        };
        (status, body, retry)
    }

    // Refuses as the real API would, and notes the problem.
    fn refuse(&self, status: u16, body: Value, why: String) -> Answer {
        self.problems.lock().unwrap().push(why);
        (status, body, vec![])
    }

    fn jira(&self, c: &Call) -> Answer {
        let err = |m: &str| json!({ "errorMessages": [m], "errors": {} });
        if c.method != "POST" || c.path != "/rest/api/2/issue" {
            return self.refuse(404, err("not found"), format!("{} {}", c.method, c.path));
        }
        if c.headers.get("authorization") != Some(&basic(JIRA_EMAIL, JIRA_TOKEN)) {
            return self.refuse(401, err("Unauthorized"), "jira auth".into());
        }
        if c.headers.get("content-type").map(String::as_str) != Some("application/json") {
            return self.refuse(
                415,
                err("Unsupported Media Type"),
                "jira content type".into(),
            );
        }
        let b = c.json();
        let f = &b["fields"];
        let mut errors = serde_json::Map::new();
        if !f["project"]["key"].is_string() {
            errors.insert("project".into(), json!("project is required"));
        }
        if !f["issuetype"]["name"].is_string() {
            errors.insert("issuetype".into(), json!("issue type is required"));
        }
        if f["summary"].as_str().is_none_or(|s| s.trim().is_empty()) {
            errors.insert(
                "summary".into(),
                json!("You must specify a summary of the issue."),
            );
        }
        if !(f["description"].is_null() || f["description"].is_string()) {
            errors.insert(
                "description".into(),
                json!("Operation value must be a string"),
            );
        }
        if !(f["priority"].is_null() || f["priority"]["name"].is_string()) {
            errors.insert(
                "priority".into(),
                json!("Could not find valid 'id' or 'name' in priority object."),
            );
        }
        if !errors.is_empty() {
            let why = format!("jira fields: {errors:?}");
            return self.refuse(400, json!({ "errorMessages": [], "errors": errors }), why);
        }
        let n = {
            let mut s = self.script.lock().unwrap();
            s.issues += 1;
            s.issues + 11
        };
        let id = 10000 + n;
        (
            201,
            json!({ "id": id.to_string(), "key": format!("OPS-{n}"),
                    "self": format!("{}/rest/api/2/issue/{id}", self.base) }),
            vec![],
        )
    }

    fn github(&self, c: &Call) -> Answer {
        let err =
            |m: &str| json!({ "message": m, "documentation_url": "https://docs.github.com/rest" });
        let parts: Vec<&str> = c.path.split('/').collect();
        let ok_path =
            c.method == "POST" && parts.len() == 5 && parts[1] == "repos" && parts[4] == "issues";
        if !ok_path {
            return self.refuse(404, err("Not Found"), format!("{} {}", c.method, c.path));
        }
        if c.headers.get("authorization") != Some(&format!("Bearer {GITHUB_TOKEN}")) {
            return self.refuse(401, err("Bad credentials"), "github auth".into());
        }
        if c.headers.get("accept").map(String::as_str) != Some("application/vnd.github+json")
            || c.headers.get("x-github-api-version").map(String::as_str) != Some("2022-11-28")
        {
            return self.refuse(400, err("Bad headers"), "github accept/version".into());
        }
        let b = c.json();
        let labels_ok = b["labels"].is_null()
            || b["labels"]
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string));
        if !b["title"].is_string() || !labels_ok || !(b["body"].is_null() || b["body"].is_string())
        {
            return self.refuse(
                422,
                json!({ "message": "Validation Failed",
                "errors": [{ "resource": "Issue", "field": "title", "code": "missing_field" }] }),
                format!("github body {b}"),
            );
        }
        let (owner, repo) = (parts[2], parts[3]);
        (
            201,
            json!({ "id": 1, "number": 1347, "state": "open", "title": b["title"],
                    "url": format!("{}/repos/{owner}/{repo}/issues/1347", self.base),
                    "html_url": format!("https://github.com/{owner}/{repo}/issues/1347") }),
            vec![],
        )
    }

    fn slack(&self, c: &Call) -> Answer {
        let fail = |e: &str| (200, json!({ "ok": false, "error": e }), vec![]);
        let Some(method) = c.path.strip_prefix("/api/") else {
            return self.refuse(404, json!("not found"), c.path.clone());
        };
        if c.headers.get("authorization") != Some(&format!("Bearer {SLACK_TOKEN}")) {
            self.problems.lock().unwrap().push("slack auth".into());
            return fail("invalid_auth");
        }
        let scripted = self
            .script
            .lock()
            .unwrap()
            .slack_errors
            .get_mut(method)
            .and_then(|q| q.pop_front());
        if let Some(e) = scripted {
            return fail(&e);
        }
        let args = if c.method == "GET" {
            json!(c.query)
        } else {
            if !c
                .headers
                .get("content-type")
                .is_some_and(|t| t.starts_with("application/json"))
            {
                self.problems
                    .lock()
                    .unwrap()
                    .push(format!("{method} content type"));
                return fail("invalid_form_data");
            }
            c.json()
        };
        let mut s = self.script.lock().unwrap();
        match (c.method.as_str(), method) {
            ("POST", "conversations.create") => {
                let Some(name) = args["name"].as_str() else {
                    drop(s);
                    self.problems
                        .lock()
                        .unwrap()
                        .push("create without name".into());
                    return fail("invalid_name_required");
                };
                let valid = !name.is_empty()
                    && name.len() <= 80
                    && name.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    });
                if !valid {
                    drop(s);
                    self.problems
                        .lock()
                        .unwrap()
                        .push(format!("bad name {name}"));
                    return fail("invalid_name_specials");
                }
                if !s.channels.insert(name.to_string()) {
                    return fail("name_taken");
                }
                let id = format!("C0{:08}", s.channel_ids.len() + 1);
                s.channel_ids.insert(id.clone(), name.to_string());
                (
                    200,
                    json!({ "ok": true, "channel": { "id": id, "name": name, "is_channel": true,
                    "is_private": args["is_private"].as_bool().unwrap_or(false), "created": 1504554479,
                    "creator": "U0BOT", "is_member": true } }),
                    vec![],
                )
            }
            ("GET", "users.lookupByEmail") => match args["email"].as_str() {
                None => fail("invalid_arguments"),
                Some(email) => match s.slack_users.get(email) {
                    Some(id) => (
                        200,
                        json!({ "ok": true, "user": { "id": id, "name": email,
                        "profile": { "email": email } } }),
                        vec![],
                    ),
                    None => fail("users_not_found"),
                },
            },
            ("POST", "conversations.invite") => {
                let channel = args["channel"].as_str().unwrap_or_default();
                let users = args["users"].as_str().unwrap_or_default();
                let known: BTreeSet<&String> = s.slack_users.values().collect();
                if !s.channel_ids.contains_key(channel) {
                    return fail("channel_not_found");
                }
                if users.is_empty() || users.split(',').any(|u| !known.contains(&u.to_string())) {
                    drop(s);
                    self.problems
                        .lock()
                        .unwrap()
                        .push(format!("invite {users}"));
                    return fail("user_not_found");
                }
                (
                    200,
                    json!({ "ok": true, "channel": { "id": channel } }),
                    vec![],
                )
            }
            ("POST", "chat.postMessage") => {
                let channel = args["channel"].as_str().unwrap_or_default();
                if !s.channel_ids.contains_key(channel) {
                    return fail("channel_not_found");
                }
                if args["text"].as_str().is_none_or(str::is_empty) && args["blocks"].is_null() {
                    drop(s);
                    self.problems
                        .lock()
                        .unwrap()
                        .push("message without text".into());
                    return fail("no_text");
                }
                (
                    200,
                    json!({ "ok": true, "channel": channel, "ts": "1503435956.000247",
                    "message": { "text": args["text"], "type": "message" } }),
                    vec![],
                )
            }
            _ => {
                drop(s);
                self.problems
                    .lock()
                    .unwrap()
                    .push(format!("{} {method}", c.method));
                fail("unknown_method")
            }
        }
    }

    fn zoom(&self, c: &Call) -> Answer {
        match (c.method.as_str(), c.path.as_str()) {
            ("POST", "/oauth/token") => {
                let q = &c.query;
                if q.get("grant_type").map(String::as_str) != Some("account_credentials")
                    || q.get("account_id").map(String::as_str) != Some(ZOOM_ACCOUNT)
                {
                    return self.refuse(400, json!({ "reason": "unsupported grant type", "error": "unsupported_grant_type" }),
                        format!("zoom token query {q:?}"));
                }
                if c.headers.get("authorization") != Some(&basic(ZOOM_CLIENT, ZOOM_SECRET)) {
                    // A wrong secret is a test's choice, not a shape problem.
                    return (
                        401,
                        json!({ "reason": "Invalid client_id or client_secret", "error": "invalid_client" }),
                        vec![],
                    );
                }
                (
                    200,
                    json!({ "access_token": ZOOM_ACCESS, "token_type": "bearer",
                    "expires_in": 3599, "scope": "meeting:write:meeting:admin" }),
                    vec![],
                )
            }
            ("POST", "/v2/users/me/meetings") => {
                if c.headers.get("authorization") != Some(&format!("Bearer {ZOOM_ACCESS}")) {
                    return self.refuse(
                        401,
                        json!({ "code": 124, "message": "Invalid access token." }),
                        "zoom bearer".into(),
                    );
                }
                if c.headers.get("content-type").map(String::as_str) != Some("application/json") {
                    return self.refuse(
                        415,
                        json!({ "code": 300, "message": "Unsupported media type" }),
                        "zoom content type".into(),
                    );
                }
                let b = c.json();
                let type_ok = matches!(b["type"].as_i64(), Some(1 | 2 | 3 | 8 | 10));
                if !type_ok
                    || !(b["topic"].is_null()
                        || b["topic"].as_str().is_some_and(|t| t.len() <= 200))
                {
                    return self.refuse(
                        400,
                        json!({ "code": 300, "message": "Validation Failed." }),
                        format!("zoom body {b}"),
                    );
                }
                (
                    201,
                    json!({ "id": 85746065432u64, "uuid": "aDYlohsHRtCd4ii1uC2+hA==",
                    "host_id": "30R7kT7bTIKSNUFEuH_Qlg", "topic": b["topic"], "type": b["type"],
                    "join_url": "https://us05web.zoom.us/j/85746065432?pwd=Pe4tMlsyb",
                    "start_url": format!("https://us05web.zoom.us/s/85746065432?zak={ZOOM_HOST_KEY}"),
                    "password": "Pe4tM" }),
                    vec![],
                )
            }
            _ => self.refuse(
                404,
                json!({ "code": 404, "message": "Not found" }),
                format!("{} {}", c.method, c.path),
            ),
        }
    }
}
