//! Escalation policies: the list, one policy with who it would page now, and
//! the editor (admins). The form posts levels as repeated fields
//! (`level_0_delay`, `level_0_targets=user:3`, …) and goes through the same
//! checks and store calls as the API.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tocsin_core::escalation::{Level, Target};
use tocsin_store::StoredPolicy;

use super::{policy_now, Names, PolicyNow};
use crate::api::escalation_policies::{create as create_policy, replace, PolicyRequest};
use crate::api::path_id;
use crate::state::AppState;
use crate::web::common::{page, see_other, Chrome, WebResult};
use crate::web::session::{field, fields, AsAdmin, AsViewer, CsrfPairs};
use crate::ApiError;

struct PolicyRow {
    id: i64,
    name: String,
    description: String,
    levels: usize,
    repeat: u32,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct ListPage {
    chrome: Chrome,
    policies: Vec<PolicyRow>,
}

/// Every escalation policy.
pub(super) async fn list(State(state): State<AppState>, who: AsViewer) -> WebResult<Response> {
    let policies = state
        .store
        .escalation_policies()
        .await?
        .into_iter()
        .map(|p| PolicyRow {
            id: p.id,
            levels: p.levels.len(),
            repeat: p.repeat,
            name: p.name,
            description: p.description,
        })
        .collect();
    Ok(page(&ListPage {
        chrome: Chrome::new(&who.0, "oncall", "Escalation policies"),
        policies,
    }))
}

struct TargetOpt {
    value: String,
    label: String,
    selected: bool,
}

struct TargetGroup {
    label: &'static str,
    opts: Vec<TargetOpt>,
}

/// One level in the editor.
struct LevelForm {
    idx: usize,
    number: usize,
    delay: String,
    groups: Vec<TargetGroup>,
    blank: bool,
}

/// The editor's contents.
struct PolicyForm {
    name: String,
    description: String,
    repeat: String,
    levels: Vec<LevelForm>,
}

fn target_value(t: &Target) -> String {
    match *t {
        Target::User(id) => format!("user:{id}"),
        Target::Schedule(id) => format!("schedule:{id}"),
        Target::Team(id) => format!("team:{id}"),
        Target::Policy(id) => format!("policy:{id}"),
    }
}

fn parse_target(v: &str) -> Option<Target> {
    let (kind, id) = v.split_once(':')?;
    let id: i64 = id.trim().parse().ok()?;
    Some(match kind {
        "user" => Target::User(id),
        "schedule" => Target::Schedule(id),
        "team" => Target::Team(id),
        "policy" => Target::Policy(id),
        _ => return None,
    })
}

fn groups(names: &Names, own: Option<i64>, selected: &[String]) -> Vec<TargetGroup> {
    let group = |label, kind: &str, m: &std::collections::HashMap<i64, String>| {
        let mut opts: Vec<TargetOpt> = m
            .iter()
            .filter(|(id, _)| kind != "policy" || Some(**id) != own)
            .map(|(id, n)| {
                let value = format!("{kind}:{id}");
                TargetOpt {
                    selected: selected.contains(&value),
                    value,
                    label: n.clone(),
                }
            })
            .collect();
        opts.sort_by(|a, b| a.label.cmp(&b.label));
        TargetGroup { label, opts }
    };
    vec![
        group("Users", "user", &names.users),
        group("Schedules", "schedule", &names.schedules),
        group("Teams", "team", &names.teams),
        group("Other policies (hand-off)", "policy", &names.policies),
    ]
}

fn level_form(
    names: &Names,
    own: Option<i64>,
    idx: usize,
    delay: String,
    targets: &[String],
) -> LevelForm {
    LevelForm {
        idx,
        number: idx + 1,
        blank: delay.is_empty() && targets.is_empty(),
        delay,
        groups: groups(names, own, targets),
    }
}

/// The editor filled from a stored policy (or empty), plus one blank level to add.
fn form_of(names: &Names, p: Option<&StoredPolicy>) -> PolicyForm {
    let own = p.map(|p| p.id);
    let mut levels: Vec<LevelForm> = p
        .map(|p| p.levels.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let ts: Vec<String> = l.targets.iter().map(target_value).collect();
            level_form(names, own, i, l.delay_minutes.to_string(), &ts)
        })
        .collect();
    let n = levels.len();
    levels.push(level_form(names, own, n, String::new(), &[]));
    PolicyForm {
        name: p.map(|p| p.name.clone()).unwrap_or_default(),
        description: p.map(|p| p.description.clone()).unwrap_or_default(),
        repeat: p
            .map(|p| p.repeat.to_string())
            .unwrap_or_else(|| "0".into()),
        levels,
    }
}

/// Level indices posted, in order.
fn level_indices(pairs: &[(String, String)]) -> Vec<usize> {
    let set: BTreeSet<usize> = pairs
        .iter()
        .filter_map(|(k, _)| {
            let rest = k.strip_prefix("level_")?;
            let (n, _) = rest.split_once('_')?;
            n.parse().ok()
        })
        .collect();
    set.into_iter().collect()
}

/// The editor refilled with what was posted.
fn form_from(names: &Names, own: Option<i64>, pairs: &[(String, String)]) -> PolicyForm {
    let text = |k: &str| field(pairs, k).unwrap_or("").to_string();
    let mut levels = Vec::new();
    for n in level_indices(pairs) {
        let delay = text(&format!("level_{n}_delay"));
        let ts: Vec<String> = fields(pairs, &format!("level_{n}_targets"))
            .into_iter()
            .map(str::to_string)
            .collect();
        let l = level_form(names, own, levels.len(), delay.trim().to_string(), &ts);
        if !l.blank && field(pairs, &format!("level_{n}_remove")).is_none() {
            levels.push(l);
        }
    }
    let n = levels.len();
    levels.push(level_form(names, own, n, String::new(), &[]));
    PolicyForm {
        name: text("name"),
        description: text("description"),
        repeat: text("repeat"),
        levels,
    }
}

fn invalid(field: String, message: &str) -> ApiError {
    ApiError::Invalid {
        field,
        message: message.into(),
    }
}

/// The posted form as the API's request; levels left blank or marked for
/// removal are left out, and errors name the level as the API would.
fn request_from(pairs: &[(String, String)]) -> Result<PolicyRequest, ApiError> {
    let text = |k: &str| field(pairs, k).unwrap_or("").trim().to_string();
    let repeat = match text("repeat").as_str() {
        "" => 0,
        r => r
            .parse()
            .map_err(|_| invalid("repeat".into(), "must be a whole number from 0 to 9"))?,
    };
    let mut levels = Vec::new();
    for n in level_indices(pairs) {
        if field(pairs, &format!("level_{n}_remove")).is_some() {
            continue;
        }
        let delay = text(&format!("level_{n}_delay"));
        let raw = fields(pairs, &format!("level_{n}_targets"));
        let raw: Vec<&str> = raw.into_iter().filter(|v| !v.trim().is_empty()).collect();
        if delay.is_empty() && raw.is_empty() {
            continue;
        }
        let i = levels.len();
        let delay_minutes = match delay.as_str() {
            "" => 0,
            d => d.parse().map_err(|_| {
                invalid(
                    format!("levels[{i}].delay_minutes"),
                    "must be a whole number of minutes",
                )
            })?,
        };
        let targets = raw
            .iter()
            .map(|v| parse_target(v))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid(
                    format!("levels[{i}].targets"),
                    "choose targets from the list",
                )
            })?;
        levels.push(Level {
            targets,
            delay_minutes,
        });
    }
    Ok(PolicyRequest {
        name: text("name"),
        description: field(pairs, "description").unwrap_or("").to_string(),
        levels,
        repeat,
    })
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    chrome: Chrome,
    /// None for a new policy.
    id: Option<i64>,
    description: String,
    now: Option<PolicyNow>,
    levels: Vec<Vec<(String, Option<String>)>>,
    delays: Vec<u32>,
    repeat: u32,
    form: PolicyForm,
    action: String,
    error: Option<String>,
}

async fn policy_page(
    state: &AppState,
    chrome: Chrome,
    p: Option<&StoredPolicy>,
    form: Option<PolicyForm>,
    error: Option<(StatusCode, String)>,
) -> WebResult<Response> {
    let names = Names::load(state).await?;
    let now = match p {
        Some(p) => Some(policy_now(state, &names, p).await?),
        None => None,
    };
    let body = PolicyPage {
        id: p.map(|p| p.id),
        description: p.map(|p| p.description.clone()).unwrap_or_default(),
        now,
        levels: p
            .map(|p| {
                p.levels
                    .iter()
                    .map(|l| l.targets.iter().map(|t| names.target(t)).collect())
                    .collect()
            })
            .unwrap_or_default(),
        delays: p
            .map(|p| p.levels.iter().map(|l| l.delay_minutes).collect())
            .unwrap_or_default(),
        repeat: p.map(|p| p.repeat).unwrap_or(0),
        form: form.unwrap_or_else(|| form_of(&names, p)),
        action: p
            .map(|p| format!("/oncall/policies/{}", p.id))
            .unwrap_or_else(|| "/oncall/policies".into()),
        error: error.as_ref().map(|e| e.1.clone()),
        chrome,
    };
    let mut resp = page(&body);
    if let Some((st, _)) = error {
        *resp.status_mut() = st;
    }
    Ok(resp)
}

/// One policy: its levels, who they would page now, and (admins) the editor.
pub(super) async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let p = state.store.escalation_policy(path_id("id", &id)?).await?;
    let chrome = Chrome::new(&who.0, "oncall", p.name.clone());
    policy_page(&state, chrome, Some(&p), None, None).await
}

/// An empty editor.
pub(super) async fn new_form(State(state): State<AppState>, who: AsAdmin) -> WebResult<Response> {
    let chrome = Chrome::new(&who.0, "oncall", "New escalation policy");
    policy_page(&state, chrome, None, None, None).await
}

/// A refusal the form can show (bad input, a clash); anything else is the error page.
async fn refused(
    state: &AppState,
    chrome: Chrome,
    p: Option<&StoredPolicy>,
    pairs: &[(String, String)],
    e: ApiError,
) -> WebResult<Response> {
    let (status, _, f) = e.parts();
    if !status.is_client_error() || status == StatusCode::NOT_FOUND {
        return Err(e.into());
    }
    let message = match f {
        Some(f) if !e.to_string().contains(&f) => format!("{f}: {e}"),
        _ => e.to_string(),
    };
    let names = Names::load(state).await?;
    let form = form_from(&names, p.map(|p| p.id), pairs);
    policy_page(state, chrome, p, Some(form), Some((status, message))).await
}

/// Creates a policy from the editor.
pub(super) async fn create(
    State(state): State<AppState>,
    who: AsAdmin,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let chrome = Chrome::new(&who.0, "oncall", "New escalation policy");
    let result = match request_from(&pairs) {
        Ok(r) => create_policy(&state, &who.actor(), r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => Ok(see_other(format!("/oncall/policies/{}", p.id))),
        Err(e) => refused(&state, chrome, None, &pairs, e).await,
    }
}

/// Replaces a policy from the editor.
pub(super) async fn update(
    State(state): State<AppState>,
    who: AsAdmin,
    Path(id): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let p = state.store.escalation_policy(path_id("id", &id)?).await?;
    let chrome = Chrome::new(&who.0, "oncall", p.name.clone());
    let result = match request_from(&pairs) {
        Ok(r) => replace(&state, &who.actor(), p.id, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => Ok(see_other(format!("/oncall/policies/{}", p.id))),
        Err(e) => refused(&state, chrome, Some(&p), &pairs, e).await,
    }
}
