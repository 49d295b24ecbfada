//! A signed-in browser for page tests: a cookie, the session's form token, and
//! plain HTTP (no redirects followed, so each answer is seen as sent).

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

/// The password every page-test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// A page answer.
pub struct Page {
    pub status: StatusCode,
    pub html: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A browser signed in as one user.
pub struct Web {
    pub base: String,
    pub http: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
    pub user_id: i64,
}

/// Creates a user with `role` and the test password; returns (id, email).
pub async fn web_user(app: &TestApp, role: &str) -> (i64, String) {
    let email = format!("{}@example.com", crate::support::unique_name(role));
    let r = app
        .post(
            "/api/v1/users",
            json!({ "name": format!("Web {role}"), "email": email, "role": role, "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["id"].as_i64().unwrap(), email)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of `name="_csrf" value="…"` in a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a form token") + 20;
    html[at..].split('"').next().unwrap().to_string()
}

/// Signs in through the sign-in form, as a browser does.
pub async fn sign_in(app: &TestApp, email: &str, password: &str) -> Result<Web, Page> {
    let http = client();
    let form = http
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap();
    let login_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("tocsin_login="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a sign-in cookie");
    let html = form.text().await.unwrap();
    let r = http
        .post(format!("{}/login", app.base))
        .header("cookie", &login_cookie)
        .form(&[
            ("_csrf", csrf_of(&html).as_str()),
            ("email", email),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    if r.status() != StatusCode::SEE_OTHER {
        return Err(page(r).await);
    }
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("tocsin_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a session cookie");
    let mut web = Web {
        base: app.base.clone(),
        http,
        cookie,
        csrf: String::new(),
        user_id: 0,
    };
    let home = web.get("/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.html);
    web.csrf = csrf_of(&home.html);
    let user = app.store.user_by_email(email).await.unwrap().unwrap().0;
    web.user_id = user.id;
    Ok(web)
}

/// A new user with `role`, signed in.
pub async fn signed_in(app: &TestApp, role: &str) -> Web {
    let (_, email) = web_user(app, role).await;
    match sign_in(app, &email, PASSWORD).await {
        Ok(w) => w,
        Err(p) => panic!("sign-in failed: {} {}", p.status, p.html),
    }
}

async fn page(r: reqwest::Response) -> Page {
    Page {
        status: r.status(),
        headers: r.headers().clone(),
        html: r.text().await.unwrap(),
    }
}

impl Web {
    /// GET a page.
    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        page(r).await
    }

    /// POST a form with the session's token, as the page's form does.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut all: Vec<(&str, &str)> = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(form);
        self.post_raw(path, &all).await
    }

    /// POST a form exactly as given (no token added).
    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        page(r).await
    }
}
