//! `[workflows]`: where HTTP steps may connect, the command allowlist, the
//! channels notify steps may name, the integrations (Jira, GitHub, Slack,
//! Zoom, Jitsi) and the key secrets are sealed with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use tocsin_core::escalation::Channel;
use tocsin_core::postmortem::tracker::{
    check_issue_type, check_project_key, check_repo, JiraTarget, TrackerTargets,
};
use tocsin_core::workflow::NetPolicy;
use tocsin_core::workflow::TargetUrl;
use tocsin_engine::workflow::integrations::{
    GithubConfig, IntegrationsConfig, JiraConfig, JitsiConfig, SlackConfig, ZoomConfig, GITHUB_API,
    PUBLIC_JITSI, SLACK_API, ZOOM_API, ZOOM_OAUTH,
};
use tocsin_engine::workflow::{channel_kind, CommandSpec, WorkflowConfig};
use tocsin_server::state::WorkflowSetup;
use tocsin_store::workflows::SecretKey;

/// The variable the secret key is read from first.
pub const SECRET_KEY_ENV: &str = "TOCSIN_SECRET_KEY";

/// `[workflows]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowsConfig {
    /// A file holding the secret key (32 bytes, base64); `TOCSIN_SECRET_KEY` wins.
    pub secret_key_file: Option<PathBuf>,
    /// Addresses, ranges and host names HTTP steps may reach although denied
    /// by default (loopback, private, link-local…).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Addresses, ranges and host names HTTP steps may never reach.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Largest HTTP response body a step reads [default: 1048576].
    pub max_response_bytes: Option<usize>,
    /// Largest command output kept per stream [default: 65536].
    pub max_output_bytes: Option<usize>,
    /// Longest a command may run, whatever its step says [default: 600].
    pub max_command_seconds: Option<u64>,
    /// Steps executing at once on one node [default: 16].
    pub concurrency: Option<usize>,
    /// `[workflows.commands.NAME]`: the allowlist. Empty: command steps are off.
    #[serde(default)]
    pub commands: BTreeMap<String, CommandEntry>,
    /// `[workflows.channels]`: name = address (`slack:C0123ABCD`, `teams:https://…`).
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
    /// `[workflows.jira]`: `jira_create_issue` steps.
    pub jira: Option<JiraSection>,
    /// `[workflows.github]`: `github_create_issue` steps.
    pub github: Option<GithubSection>,
    /// `[workflows.slack]`: `slack_create_channel` steps.
    pub slack: Option<SlackSection>,
    /// `[workflows.zoom]`: `zoom_meeting` steps.
    pub zoom: Option<ZoomSection>,
    /// `[workflows.jitsi]`: where `jitsi_link` rooms are.
    pub jitsi: Option<JitsiSection>,
}

/// `[workflows.jira]`. Credentials are named stored secrets, never values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraSection {
    /// The site, e.g. `https://example.atlassian.net`.
    pub base_url: String,
    /// The account the API token belongs to.
    pub email: String,
    /// Name of the stored secret holding the API token.
    pub api_token_secret: String,
    /// The project postmortem action items are created in (a key, `OPS`);
    /// unset: action items are not created in Jira.
    pub action_items_project: Option<String>,
    /// Their issue type [default: Task].
    pub action_items_issue_type: Option<String>,
}

/// `[workflows.github]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSection {
    /// The API [default: https://api.github.com].
    pub base_url: Option<String>,
    /// Name of the stored secret holding the token.
    pub token_secret: String,
    /// The repository postmortem action items are created in (`owner/name`);
    /// unset: action items are not created in GitHub.
    pub action_items_repo: Option<String>,
}

/// `[workflows.slack]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSection {
    /// The Web API [default: https://slack.com/api].
    pub base_url: Option<String>,
    /// Name of the stored secret holding the bot token.
    pub bot_token_secret: String,
}

/// `[workflows.zoom]`: a Server-to-Server OAuth app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoomSection {
    /// The API [default: https://api.zoom.us/v2].
    pub api_url: Option<String>,
    /// The OAuth server [default: https://zoom.us].
    pub oauth_url: Option<String>,
    /// The app's account id.
    pub account_id: String,
    /// The app's client id.
    pub client_id: String,
    /// Name of the stored secret holding the app's client secret.
    pub client_secret_secret: String,
    /// Whose meetings: `me` (the account owner), a user's email or id [default: me].
    pub host: Option<String>,
}

/// `[workflows.jitsi]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitsiSection {
    /// Where rooms are [default: https://meet.jit.si].
    pub base_url: Option<String>,
}

// A base URL: http or https, checked like an HTTP step's URL.
fn base_url(field: &str, url: &str) -> anyhow::Result<String> {
    TargetUrl::parse(field, url).map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
    Ok(url.trim_end_matches('/').to_string())
}

// The name of a stored secret. The message never repeats the text: someone
// may have written the secret's value here by mistake.
fn secret_ref(field: &str, name: &str) -> anyhow::Result<String> {
    tocsin_store::workflows::secret_name(field, name).map_err(|_| {
        anyhow::anyhow!(
            "{field}: must be the name of a stored secret (a letter or `_`, then letters, digits or `_`), not the secret's value"
        )
    })
}

// Plain text that must be there (an email, an account id).
fn required(field: &str, v: &str) -> anyhow::Result<String> {
    if v.trim().is_empty() {
        bail!("{field}: must not be empty");
    }
    Ok(v.trim().to_string())
}

impl WorkflowsConfig {
    /// Where postmortem action items may be created, checked.
    fn trackers(&self) -> anyhow::Result<TrackerTargets> {
        let invalid = |e: tocsin_core::Invalid| anyhow::anyhow!("{}: {}", e.field, e.message);
        let jira = match &self.jira {
            Some(JiraSection {
                action_items_project: Some(p),
                action_items_issue_type: t,
                ..
            }) => Some(JiraTarget {
                project: check_project_key("workflows.jira.action_items_project", p)
                    .map_err(invalid)?,
                issue_type: check_issue_type(
                    "workflows.jira.action_items_issue_type",
                    t.as_deref().unwrap_or("Task"),
                )
                .map_err(invalid)?,
            }),
            Some(JiraSection {
                action_items_issue_type: Some(_),
                ..
            }) => bail!(
                "workflows.jira.action_items_issue_type: needs action_items_project, the project items go to"
            ),
            _ => None,
        };
        let github = match self
            .github
            .as_ref()
            .and_then(|g| g.action_items_repo.as_ref())
        {
            Some(r) => {
                Some(check_repo("workflows.github.action_items_repo", r.trim()).map_err(invalid)?)
            }
            None => None,
        };
        Ok(TrackerTargets { jira, github })
    }

    /// The integrations as the engine needs them, checked.
    fn integrations(&self) -> anyhow::Result<IntegrationsConfig> {
        let jira = match &self.jira {
            None => None,
            Some(j) => Some(JiraConfig {
                base_url: base_url("workflows.jira.base_url", &j.base_url)?,
                email: required("workflows.jira.email", &j.email)?,
                api_token_secret: secret_ref(
                    "workflows.jira.api_token_secret",
                    &j.api_token_secret,
                )?,
            }),
        };
        let github = match &self.github {
            None => None,
            Some(g) => Some(GithubConfig {
                base_url: base_url(
                    "workflows.github.base_url",
                    g.base_url.as_deref().unwrap_or(GITHUB_API),
                )?,
                token_secret: secret_ref("workflows.github.token_secret", &g.token_secret)?,
            }),
        };
        let slack = match &self.slack {
            None => None,
            Some(s) => Some(SlackConfig {
                base_url: base_url(
                    "workflows.slack.base_url",
                    s.base_url.as_deref().unwrap_or(SLACK_API),
                )?,
                bot_token_secret: secret_ref(
                    "workflows.slack.bot_token_secret",
                    &s.bot_token_secret,
                )?,
            }),
        };
        let zoom = match &self.zoom {
            None => None,
            Some(z) => Some(ZoomConfig {
                api_url: base_url(
                    "workflows.zoom.api_url",
                    z.api_url.as_deref().unwrap_or(ZOOM_API),
                )?,
                oauth_url: base_url(
                    "workflows.zoom.oauth_url",
                    z.oauth_url.as_deref().unwrap_or(ZOOM_OAUTH),
                )?,
                account_id: required("workflows.zoom.account_id", &z.account_id)?,
                client_id: required("workflows.zoom.client_id", &z.client_id)?,
                client_secret_secret: secret_ref(
                    "workflows.zoom.client_secret_secret",
                    &z.client_secret_secret,
                )?,
                host: required("workflows.zoom.host", z.host.as_deref().unwrap_or("me"))?,
            }),
        };
        let jitsi = JitsiConfig {
            base_url: base_url(
                "workflows.jitsi.base_url",
                self.jitsi
                    .as_ref()
                    .and_then(|j| j.base_url.as_deref())
                    .unwrap_or(PUBLIC_JITSI),
            )?,
        };
        Ok(IntegrationsConfig {
            jira,
            github,
            slack,
            zoom,
            jitsi,
        })
    }
}

/// One allowlisted command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandEntry {
    /// Absolute path of the program.
    pub program: PathBuf,
    /// Arguments always passed first; a step's own follow.
    #[serde(default)]
    pub args: Vec<String>,
}

impl WorkflowsConfig {
    /// The engine's settings and what the API checks definitions against.
    pub fn build(&self) -> anyhow::Result<(WorkflowConfig, WorkflowSetup)> {
        let net = NetPolicy::parse(&self.allow, &self.deny)
            .map_err(|e| anyhow::anyhow!("workflows.{}: {}", e.field, e.message))?;
        let mut commands = BTreeMap::new();
        for (name, c) in &self.commands {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                bail!("workflows.commands.{name}: a command name is letters, digits, - and _");
            }
            if !c.program.is_absolute() {
                bail!(
                    "workflows.commands.{name}.program: `{}` must be an absolute path",
                    c.program.display()
                );
            }
            if !c.program.is_file() {
                bail!(
                    "workflows.commands.{name}.program: `{}` does not exist",
                    c.program.display()
                );
            }
            commands.insert(
                name.clone(),
                CommandSpec {
                    program: c.program.clone(),
                    args: c.args.clone(),
                },
            );
        }
        for (name, address) in &self.channels {
            if Channel::of(channel_kind(address), address).is_none() {
                bail!("workflows.channels.{name}: `{address}` is not an address a provider serves (e.g. slack:C0123ABCD)");
            }
        }
        let d = WorkflowConfig::default();
        let config = WorkflowConfig {
            net,
            commands,
            channels: self.channels.clone(),
            max_response_bytes: self.max_response_bytes.unwrap_or(d.max_response_bytes),
            max_output_bytes: self.max_output_bytes.unwrap_or(d.max_output_bytes),
            max_command_timeout: self
                .max_command_seconds
                .map(std::time::Duration::from_secs)
                .unwrap_or(d.max_command_timeout),
            concurrency: self.concurrency.unwrap_or(d.concurrency).max(1),
            integrations: self.integrations()?,
        };
        let i = &config.integrations;
        let named = [
            i.jira
                .as_ref()
                .map(|j| (&j.api_token_secret, "workflows.jira.api_token_secret")),
            i.github
                .as_ref()
                .map(|g| (&g.token_secret, "workflows.github.token_secret")),
            i.slack
                .as_ref()
                .map(|s| (&s.bot_token_secret, "workflows.slack.bot_token_secret")),
            i.zoom.as_ref().map(|z| {
                (
                    &z.client_secret_secret,
                    "workflows.zoom.client_secret_secret",
                )
            }),
        ];
        let setup = WorkflowSetup {
            commands: config.commands.keys().cloned().collect(),
            channels: config.channels.keys().cloned().collect(),
            config_secrets: named
                .into_iter()
                .flatten()
                .map(|(name, key)| (name.clone(), key.to_string()))
                .collect(),
            trackers: self.trackers()?,
        };
        Ok((config, setup))
    }

    /// The secret key: `TOCSIN_SECRET_KEY`, else `secret_key_file`, else (on
    /// the embedded database only) `secret.key` in the data directory,
    /// created on first start. `None` on PostgreSQL without a key: secrets
    /// cannot be stored until every node is given the same one.
    pub fn secret_key(&self, data_dir: &Path, sqlite: bool) -> anyhow::Result<Option<SecretKey>> {
        let bad = |from: &str, e: String| anyhow::anyhow!("{from}: {e}");
        if let Some(v) = std::env::var(SECRET_KEY_ENV).ok().filter(|v| !v.is_empty()) {
            return SecretKey::from_base64(&v)
                .map(Some)
                .map_err(|e| bad(SECRET_KEY_ENV, e));
        }
        if let Some(p) = &self.secret_key_file {
            let text = std::fs::read_to_string(p).with_context(|| {
                format!("workflows.secret_key_file: cannot read {}", p.display())
            })?;
            return SecretKey::from_base64(&text)
                .map(Some)
                .map_err(|e| bad("workflows.secret_key_file", e));
        }
        if !sqlite {
            tracing::warn!(
                "no workflow secret key ({SECRET_KEY_ENV} or [workflows] secret_key_file): \
                 secrets cannot be stored; give every node the same key"
            );
            return Ok(None);
        }
        let path = data_dir.join("secret.key");
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            return SecretKey::from_base64(&text)
                .map(Some)
                .map_err(|e| bad(&path.display().to_string(), e));
        }
        let text = SecretKey::generate_base64().map_err(|e| anyhow::anyhow!(e))?;
        write_private(&path, &text)?;
        tracing::info!(path = %path.display(),
            "generated the workflow secret key; back it up with the database (secrets do not open without it)");
        SecretKey::from_base64(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!(e))
    }
}

// Readable by the owner only, from the moment it exists.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_named() {
        let c: WorkflowsConfig = toml::from_str(
            "allow = [\"127.0.0.1\"]\n[commands.echo]\nprogram = \"/bin/echo\"\nargs = [\"-n\"]\n[channels]\nops = \"slack:C0123ABCD\"\n",
        )
        .unwrap();
        let (config, setup) = c.build().unwrap();
        assert!(config.commands.contains_key("echo"));
        assert_eq!(setup.channels.iter().collect::<Vec<_>>(), ["ops"]);
        for (text, key) in [
            ("allow = [\"10.0.0.0/33\"]", "workflows.allow[0]"),
            (
                "[commands.x]\nprogram = \"echo\"",
                "workflows.commands.x.program",
            ),
            (
                "[commands.x]\nprogram = \"/nonexistent/x\"",
                "workflows.commands.x.program",
            ),
            (
                "[commands.\"a b\"]\nprogram = \"/bin/echo\"",
                "workflows.commands.a b",
            ),
            ("[channels]\nops = \"fax:123\"", "workflows.channels.ops"),
            (
                "[jira]\nbase_url = \"jira.example\"\nemail = \"a@b.c\"\napi_token_secret = \"T\"",
                "workflows.jira.base_url",
            ),
            (
                "[jira]\nbase_url = \"https://j.example\"\nemail = \"a@b.c\"\napi_token_secret = \"T\"\naction_items_project = \"ops\"",
                "workflows.jira.action_items_project",
            ),
            (
                "[jira]\nbase_url = \"https://j.example\"\nemail = \"a@b.c\"\napi_token_secret = \"T\"\naction_items_issue_type = \"Bug\"",
                "workflows.jira.action_items_issue_type",
            ),
            (
                "[github]\ntoken_secret = \"G\"\naction_items_repo = \"acme\"",
                "workflows.github.action_items_repo",
            ),
            (
                "[slack]\nbot_token_secret = \"xoxb-123-abc\"",
                "workflows.slack.bot_token_secret",
            ),
            (
                "[zoom]\naccount_id = \"\"\nclient_id = \"c\"\nclient_secret_secret = \"Z\"",
                "workflows.zoom.account_id",
            ),
        ] {
            let c: WorkflowsConfig = toml::from_str(text).unwrap();
            let e = c.build().unwrap_err();
            assert!(format!("{e:#}").contains(key), "{text}: {e:#}");
        }
    }

    #[test]
    fn integrations_are_read_with_their_defaults() {
        let c: WorkflowsConfig = toml::from_str(
            "[jira]\nbase_url = \"https://acme.atlassian.net/\"\nemail = \"bot@acme.example\"\napi_token_secret = \"JIRA_TOKEN\"\n[slack]\nbot_token_secret = \"SLACK_BOT_TOKEN\"\n[zoom]\naccount_id = \"acc\"\nclient_id = \"cid\"\nclient_secret_secret = \"ZOOM_SECRET\"\n",
        )
        .unwrap();
        let (config, _) = c.build().unwrap();
        let i = config.integrations;
        assert_eq!(i.jira.unwrap().base_url, "https://acme.atlassian.net");
        assert_eq!(i.slack.unwrap().base_url, "https://slack.com/api");
        let zoom = i.zoom.unwrap();
        assert_eq!(
            (
                zoom.api_url.as_str(),
                zoom.oauth_url.as_str(),
                zoom.host.as_str()
            ),
            ("https://api.zoom.us/v2", "https://zoom.us", "me")
        );
        assert!(i.github.is_none());
        let (_, setup) = c.build().unwrap();
        assert_eq!(
            setup.config_secrets["SLACK_BOT_TOKEN"],
            "workflows.slack.bot_token_secret"
        );
        assert_eq!(i.jitsi.base_url, "https://meet.jit.si");
        // Action items go nowhere unless a project or repository is named.
        assert_eq!(setup.trackers, TrackerTargets::default());
        let c: WorkflowsConfig = toml::from_str(
            "[jira]\nbase_url = \"https://acme.atlassian.net\"\nemail = \"b@acme.example\"\napi_token_secret = \"J\"\naction_items_project = \"OPS\"\n[github]\ntoken_secret = \"G\"\naction_items_repo = \"acme/api\"\n",
        )
        .unwrap();
        let (_, setup) = c.build().unwrap();
        assert_eq!(
            setup.trackers,
            TrackerTargets {
                jira: Some(JiraTarget {
                    project: "OPS".into(),
                    issue_type: "Task".into()
                }),
                github: Some("acme/api".into()),
            }
        );
        // A value written where a secret's name belongs is refused unrepeated.
        let c: WorkflowsConfig =
            toml::from_str("[github]\ntoken_secret = \"ghp_abc-123\"\n").unwrap();
        let e = format!("{:#}", c.build().unwrap_err());
        assert!(
            e.contains("workflows.github.token_secret") && !e.contains("ghp_abc-123"),
            "{e}"
        );
    }

    #[test]
    fn the_embedded_database_gets_a_private_key_file_once() {
        let dir = std::env::temp_dir().join(format!("tocsin-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = WorkflowsConfig::default();
        if std::env::var(SECRET_KEY_ENV).is_ok() {
            return;
        }
        assert!(c.secret_key(&dir, true).unwrap().is_some());
        let first = std::fs::read_to_string(dir.join("secret.key")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(c.secret_key(&dir, true).unwrap().is_some());
        assert_eq!(
            std::fs::read_to_string(dir.join("secret.key")).unwrap(),
            first
        );
        assert!(
            c.secret_key(&dir, false).unwrap().is_none(),
            "PostgreSQL needs a shared key"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
