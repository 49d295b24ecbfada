//! The API client: one place that sends requests and turns error bodies into messages.

use anyhow::{anyhow, bail, Context};
use clap::Args;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

/// Where the server is and who we are; every client command takes these.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// Server URL.
    #[arg(
        long,
        env = "TOCSIN_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API token (`tcs_…`).
    #[arg(long, env = "TOCSIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A connected client.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
    /// Whether to print JSON.
    pub json: bool,
}

impl Api {
    /// Builds a client; refuses to start without a token.
    pub fn new(conn: &Conn) -> anyhow::Result<Api> {
        let token = conn
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("no API token: set TOCSIN_TOKEN or pass --token (the first server start prints one)"))?;
        Ok(Api {
            base: conn.url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
            json: conn.json,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    /// Sends and decodes a JSON response; an error body becomes `field: message`.
    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Value> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the Tocsin server at {}", self.base))?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the response")?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(body);
        }
        let err = &body["error"];
        match (err["field"].as_str(), err["message"].as_str()) {
            (Some(f), Some(m)) => bail!("{f}: {m} ({status})"),
            (None, Some(m)) => bail!("{m} ({status})"),
            _ => bail!(
                "the server answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(Method::GET, path)).await
    }

    /// Send JSON with a method.
    pub async fn json(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.request(method, path).json(body)).await
    }

    /// POST raw bytes.
    pub async fn upload(
        &self,
        path: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> anyhow::Result<Value> {
        self.send(
            self.request(Method::POST, path)
                .header("content-type", content_type)
                .body(data),
        )
        .await
    }

    /// DELETE a path.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(Method::DELETE, path)).await
    }
}
