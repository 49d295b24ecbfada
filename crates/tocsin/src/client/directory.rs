//! `tocsin service …`, `tocsin user …`, `tocsin token …`, `tocsin whoami`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::http::Api;
use super::output;

/// Service commands.
#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// List services.
    List,
    /// Create a service (admin).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Owning team id.
        #[arg(long)]
        team: Option<i64>,
    },
    /// Show a service and its integration keys.
    Show { id: i64 },
    /// Integration keys that send alerts to a service (admin).
    #[command(subcommand)]
    Key(KeyCmd),
}

/// Integration key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Create a key; its secret is printed once.
    Create {
        service: i64,
        #[arg(long)]
        name: String,
    },
    /// List a service's keys.
    List { service: i64 },
    /// Revoke a key.
    Revoke { service: i64, key: i64 },
}

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// List users.
    List,
    /// Create a user (admin).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// viewer, responder or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Shorthand for --role admin.
        #[arg(long)]
        admin: bool,
        /// Password for the web UI (at least 10 characters).
        #[arg(long)]
        password: Option<String>,
        /// IANA time zone.
        #[arg(long)]
        time_zone: Option<String>,
    },
}

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create an API token; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// viewer, responder or admin (at most your own).
        #[arg(long)]
        role: Option<String>,
        /// Owner user id (admins only; default: you).
        #[arg(long)]
        user: Option<i64>,
    },
    /// List tokens (yours; everyone's for admins).
    List,
    /// Revoke a token.
    Revoke { id: i64 },
}

fn print(api: &Api, v: &Value, fields: &[&str]) {
    if api.json {
        output::json(v)
    } else {
        output::fields(v, fields)
    }
}

fn print_list(api: &Api, v: &Value, headers: &[&str], fields: &[&str]) {
    if api.json {
        output::json(v)
    } else {
        output::objects(
            v.as_array().map(Vec::as_slice).unwrap_or(&[]),
            headers,
            fields,
        )
    }
}

fn print_secret(api: &Api, v: &Value, what: &str) {
    if api.json {
        return output::json(v);
    }
    println!("Created {what} {} ({}).", v["id"], output::cell(&v["name"]));
    println!(
        "Its secret is shown only now:\n\n    {}\n",
        output::cell(&v["secret"])
    );
}

/// Runs a service command.
pub async fn service(api: &Api, cmd: ServiceCmd) -> anyhow::Result<()> {
    match cmd {
        ServiceCmd::List => {
            let v = api.get("/api/v1/services").await?;
            print_list(
                api,
                &v,
                &["ID", "NAME", "TEAM", "DESCRIPTION"],
                &["id", "name", "team_id", "description"],
            );
        }
        ServiceCmd::Create {
            name,
            description,
            team,
        } => {
            let v = api
                .json(
                    Method::POST,
                    "/api/v1/services",
                    &json!({ "name": name, "description": description, "team_id": team }),
                )
                .await?;
            print(api, &v, &["id", "name", "description", "team_id"]);
        }
        ServiceCmd::Show { id } => {
            let v = api.get(&format!("/api/v1/services/{id}")).await?;
            print(
                api,
                &v,
                &[
                    "id",
                    "name",
                    "description",
                    "team_id",
                    "created_at",
                    "updated_at",
                ],
            );
        }
        ServiceCmd::Key(KeyCmd::Create { service, name }) => {
            let v = api
                .json(
                    Method::POST,
                    &format!("/api/v1/services/{service}/integration-keys"),
                    &json!({ "name": name }),
                )
                .await?;
            print_secret(api, &v, "integration key");
        }
        ServiceCmd::Key(KeyCmd::List { service }) => {
            let v = api
                .get(&format!("/api/v1/services/{service}/integration-keys"))
                .await?;
            print_list(
                api,
                &v,
                &["ID", "NAME", "PREFIX", "CREATED", "REVOKED"],
                &["id", "name", "prefix", "created_at", "revoked_at"],
            );
        }
        ServiceCmd::Key(KeyCmd::Revoke { service, key }) => {
            let v = api
                .delete(&format!(
                    "/api/v1/services/{service}/integration-keys/{key}"
                ))
                .await?;
            print(api, &v, &["id", "name", "revoked_at"]);
        }
    }
    Ok(())
}

/// Runs a user command.
pub async fn user(api: &Api, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::List => {
            let v = api.get("/api/v1/users").await?;
            print_list(
                api,
                &v,
                &["ID", "NAME", "EMAIL", "ROLE", "ACTIVE"],
                &["id", "name", "email", "role", "active"],
            );
        }
        UserCmd::Create {
            name,
            email,
            role,
            admin,
            password,
            time_zone,
        } => {
            let mut b = Map::new();
            b.insert("name".into(), name.into());
            b.insert("email".into(), email.into());
            b.insert(
                "role".into(),
                if admin { "admin".into() } else { role.into() },
            );
            if let Some(p) = password {
                b.insert("password".into(), p.into());
            }
            if let Some(t) = time_zone {
                b.insert("time_zone".into(), t.into());
            }
            let v = api
                .json(Method::POST, "/api/v1/users", &Value::Object(b))
                .await?;
            print(api, &v, &["id", "name", "email", "role", "time_zone"]);
        }
    }
    Ok(())
}

/// Runs a token command.
pub async fn token(api: &Api, cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { name, role, user } => {
            let v = api
                .json(
                    Method::POST,
                    "/api/v1/tokens",
                    &json!({ "name": name, "role": role, "user_id": user }),
                )
                .await?;
            print_secret(api, &v, "token");
        }
        TokenCmd::List => {
            let v = api.get("/api/v1/tokens").await?;
            print_list(
                api,
                &v,
                &[
                    "ID",
                    "NAME",
                    "USER",
                    "ROLE",
                    "PREFIX",
                    "LAST USED",
                    "REVOKED",
                ],
                &[
                    "id",
                    "name",
                    "user_id",
                    "role",
                    "prefix",
                    "last_used_at",
                    "revoked_at",
                ],
            );
        }
        TokenCmd::Revoke { id } => {
            let v = api.delete(&format!("/api/v1/tokens/{id}")).await?;
            print(api, &v, &["id", "name", "revoked_at"]);
        }
    }
    Ok(())
}

/// Prints who the token belongs to.
pub async fn whoami(api: &Api) -> anyhow::Result<()> {
    let v = api.get("/api/v1/me").await?;
    if api.json {
        output::json(&v);
    } else {
        println!(
            "{} <{}>, {} (token {})",
            output::cell(&v["user"]["name"]),
            output::cell(&v["user"]["email"]),
            output::cell(&v["role"]),
            v["token_id"]
        );
    }
    Ok(())
}
