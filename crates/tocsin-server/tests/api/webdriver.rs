//! A minimal W3C WebDriver client over reqwest, enough to drive headless
//! Chromium through ChromeDriver: one `Driver` (the chromedriver process) and
//! any number of `Browser` sessions on it.

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The key W3C uses for an element reference.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long `wait_for` waits for the page before failing the test.
const WAIT: Duration = Duration::from_secs(10);

/// One browser test at a time in this process: the machine has 2 cores and a
/// Chromium each would starve the servers under test.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A WebDriver error: the W3C error code (`no such element`, `no such alert`, …)
/// and its message.
#[derive(Debug)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

pub type WdResult<T> = Result<T, WdError>;

/// A running chromedriver, killed when the last session using it is gone.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this machine can run browser tests; prints the skip when not. CI
/// installs them (.ci/run), so there a missing browser fails instead of skipping.
pub fn available() -> bool {
    let ok = std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium/chromedriver not installed, and CI is set: .ci/run installs them"
        );
        eprintln!("skipped: chromium/chromedriver not installed");
    }
    ok
}

impl Driver {
    /// Waits for this process's turn, starts chromedriver on a free port and
    /// waits until it says it is ready.
    pub async fn start() -> Arc<Driver> {
        let turn = ONE_AT_A_TIME.lock().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _turn: turn,
        };
        let ready = wait_for("chromedriver to be ready", || async {
            let r = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .ok()?;
            let v: Value = r.json().await.ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        assert!(ready);
        Arc::new(driver)
    }

    /// A new headless Chromium session.
    pub async fn session(self: &Arc<Self>) -> Browser {
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1280,900"],
            },
        } } });
        let v = send(
            &self.http,
            reqwest::Method::POST,
            format!("{}/session", self.base),
            Some(caps),
        )
        .await
        .expect("new session");
        Browser {
            id: v["sessionId"].as_str().expect("a session id").to_string(),
            driver: self.clone(),
        }
    }
}

/// One browser session (a window with its own cookies).
pub struct Browser {
    id: String,
    driver: Arc<Driver>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime: a fresh one on its own thread.
        let url = format!("{}/session/{}", self.driver.base, self.id);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                reqwest::Client::new()
                    .delete(url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .ok()
            })
        })
        .join();
    }
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> WdResult<Value> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.map_err(|e| WdError {
        error: "transport".into(),
        message: e.to_string(),
    })?;
    let ok = r.status().is_success();
    let v: Value = r.json().await.map_err(|e| WdError {
        error: "transport".into(),
        message: e.to_string(),
    })?;
    if ok {
        Ok(v["value"].clone())
    } else {
        Err(WdError {
            error: v["value"]["error"].as_str().unwrap_or("unknown").into(),
            message: v["value"]["message"].as_str().unwrap_or("").into(),
        })
    }
}

impl Browser {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> WdResult<Value> {
        send(
            &self.driver.http,
            method,
            format!("{}/session/{}{path}", self.driver.base, self.id),
            body,
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> WdResult<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> WdResult<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }))
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> WdResult<String> {
        let v = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await?;
        Ok(v[ELEMENT].as_str().unwrap_or_default().to_string())
    }

    /// Every element matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> WdResult<Vec<String>> {
        let v = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn click(&self, element: &str) -> WdResult<()> {
        self.post(&format!("/element/{element}/click"), json!({}))
            .await
            .map(drop)
    }

    pub async fn send_keys(&self, element: &str, text: &str) -> WdResult<()> {
        self.post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await
        .map(drop)
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &str) -> WdResult<String> {
        let v = self.get(&format!("/element/{element}/text")).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// An attribute's value (None when absent).
    pub async fn attribute(&self, element: &str, name: &str) -> WdResult<Option<String>> {
        let v = self
            .get(&format!("/element/{element}/attribute/{name}"))
            .await?;
        Ok(v.as_str().map(str::to_string))
    }

    /// Runs a script (`arguments[i]` are `args`); its return value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> WdResult<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Runs a script that calls `arguments[arguments.length - 1](result)` when done.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> WdResult<Value> {
        self.post("/execute/async", json!({ "script": script, "args": args }))
            .await
    }

    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .expect("current url")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the window's viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.get("/screenshot").await.expect("screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("valid base64")
    }

    pub async fn set_window_rect(&self, width: i64, height: i64) -> WdResult<()> {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await
            .map(drop)
    }

    /// The text of the open JS dialog; Err(`no such alert`) when none is open.
    pub async fn alert_text(&self) -> WdResult<String> {
        let v = self.get("/alert/text").await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Accepts the open JS dialog (a `data-confirm` question).
    pub async fn accept_alert(&self) -> WdResult<()> {
        self.post("/alert/accept", json!({})).await.map(drop)
    }

    // Conveniences built on the above.

    /// Waits for an element, then returns it.
    pub async fn wait_find(&self, css: &str) -> String {
        wait_for(&format!("an element {css}"), || async {
            self.find(css).await.ok()
        })
        .await
    }

    /// Waits for an element, then clicks it.
    pub async fn click_on(&self, css: &str) {
        // A live refresh may replace the element between finding and clicking it:
        // find it again, as a person would click the button now on the screen.
        for _ in 0..5 {
            let e = self.wait_find(css).await;
            match self.click(&e).await {
                Ok(_) => return,
                Err(err) if err.to_string().contains("stale element") => continue,
                Err(err) => panic!("click {css}: {err}"),
            }
        }
        panic!("click {css}: the element kept being replaced");
    }

    /// Waits for an element, then types into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_find(css).await;
        self.send_keys(&e, text)
            .await
            .unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    /// The text of the first element matching `css`, if there is one now.
    pub async fn text_of(&self, css: &str) -> Option<String> {
        let e = self.find(css).await.ok()?;
        self.text(&e).await.ok()
    }

    /// Waits until the element's text satisfies `ok`; returns that text.
    pub async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        wait_for(&format!("{css} {what}"), || async {
            self.text_of(css).await.filter(|t| ok(t))
        })
        .await
    }

    /// Waits until the page's path is `path`.
    pub async fn wait_path(&self, path: &str) {
        let want = path.to_string();
        wait_for(&format!("the page {path}"), || async {
            let url = self.current_url().await;
            let p = url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
                .unwrap_or_default();
            (p.split(['?', '#']).next() == Some(want.as_str())).then_some(())
        })
        .await
    }

    /// The HTTP status of a same-origin GET from the page (with its cookies).
    pub async fn status_of(&self, path: &str) -> u16 {
        let v = self
            .execute_async(
                "var done = arguments[arguments.length - 1];
                 fetch(arguments[0], { credentials: 'same-origin' })
                   .then(function (r) { done(r.status); }, function (e) { done(String(e)); });",
                vec![json!(path)],
            )
            .await
            .expect("fetch from the page");
        v.as_u64().unwrap_or_else(|| panic!("fetch {path}: {v}")) as u16
    }
}

/// Polls `f` every 50 ms until it gives Some, for up to 10 s (a bounded wait
/// for the page, not a sleep for the server); panics naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > until {
            panic!("waited 10 s for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
