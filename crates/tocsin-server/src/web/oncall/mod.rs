//! On-call pages: who is on call now everywhere, each schedule as a calendar
//! with its overrides, and the escalation policies with their editor.

mod calendar;
mod policies;
mod schedule;

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tocsin_core::escalation::Target;

use super::common::{on_call_now, page, Chrome, OnCallNow, WebResult};
use super::session::AsViewer;
use crate::api::escalation_policies::on_call;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/oncall", get(overview))
        .route("/oncall/schedules", get(schedules))
        .route("/oncall/schedules/{id}", get(schedule::show))
        .route(
            "/oncall/schedules/{id}/overrides",
            post(schedule::create_override),
        )
        .route(
            "/oncall/schedules/{id}/overrides/{override_id}/delete",
            post(schedule::delete_override),
        )
        .route(
            "/oncall/policies",
            get(policies::list).post(policies::create),
        )
        .route("/oncall/policies/new", get(policies::new_form))
        .route(
            "/oncall/policies/{id}",
            get(policies::show).post(policies::update),
        )
}

/// Names of everything a policy level can target.
pub(super) struct Names {
    pub users: HashMap<i64, String>,
    pub schedules: HashMap<i64, String>,
    pub teams: HashMap<i64, String>,
    pub policies: HashMap<i64, String>,
}

impl Names {
    pub async fn load(state: &AppState) -> WebResult<Names> {
        let store = &state.store;
        Ok(Names {
            users: store
                .users()
                .await?
                .into_iter()
                .map(|u| (u.id, u.name))
                .collect(),
            schedules: store
                .schedules()
                .await?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect(),
            teams: store
                .teams()
                .await?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect(),
            policies: store
                .escalation_policies()
                .await?
                .into_iter()
                .map(|p| (p.id, p.name))
                .collect(),
        })
    }

    /// A target in words, `schedule Platform primary`, and where it links to.
    pub fn target(&self, t: &Target) -> (String, Option<String>) {
        let named = |kind: &str, m: &HashMap<i64, String>, id: i64| {
            m.get(&id)
                .map(|n| format!("{kind} {n}"))
                .unwrap_or_else(|| format!("{kind} {id} (deleted)"))
        };
        match *t {
            Target::User(id) => (named("user", &self.users, id), None),
            Target::Schedule(id) => (
                named("schedule", &self.schedules, id),
                Some(format!("/oncall/schedules/{id}")),
            ),
            Target::Team(id) => (named("team", &self.teams, id), None),
            Target::Policy(id) => (
                named("policy", &self.policies, id),
                Some(format!("/oncall/policies/{id}")),
            ),
        }
    }
}

/// One level of a policy as shown: who it would page now.
pub(super) struct LevelNow {
    pub number: usize,
    pub delay_minutes: u32,
    pub users: Vec<String>,
    pub empty: Vec<String>,
}

/// Who each level of a policy would page now.
pub(super) struct PolicyNow {
    pub id: i64,
    pub name: String,
    pub levels: Vec<LevelNow>,
}

pub(super) async fn policy_now(
    state: &AppState,
    names: &Names,
    p: &tocsin_store::StoredPolicy,
) -> WebResult<PolicyNow> {
    let answer = on_call(state, p, state.now()).await?;
    Ok(PolicyNow {
        id: p.id,
        name: p.name.clone(),
        levels: answer
            .levels
            .into_iter()
            .map(|l| LevelNow {
                number: l.level + 1,
                delay_minutes: l.delay_minutes,
                users: l.users.into_iter().map(|u| u.user_name).collect(),
                empty: l.empty_targets.iter().map(|t| names.target(t).0).collect(),
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "oncall.html")]
struct OverviewPage {
    chrome: Chrome,
    schedules: Vec<OnCallNow>,
    policies: Vec<PolicyNow>,
}

/// Who is on call now: every schedule, and who every policy's levels would page.
async fn overview(State(state): State<AppState>, who: AsViewer) -> WebResult<Response> {
    let names = Names::load(&state).await?;
    let mut policies = Vec::new();
    for p in state.store.escalation_policies().await? {
        policies.push(policy_now(&state, &names, &p).await?);
    }
    let body = OverviewPage {
        chrome: Chrome::new(&who.0, "oncall", "On call now"),
        schedules: on_call_now(&state, state.now()).await?,
        policies,
    };
    Ok(page(&body))
}

struct ScheduleRow {
    id: i64,
    name: String,
    description: String,
    time_zone: String,
    layers: usize,
    on_call: Option<String>,
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage {
    chrome: Chrome,
    schedules: Vec<ScheduleRow>,
}

/// Every schedule, with who is on call on it now.
async fn schedules(State(state): State<AppState>, who: AsViewer) -> WebResult<Response> {
    let now: HashMap<i64, Option<String>> = on_call_now(&state, state.now())
        .await?
        .into_iter()
        .map(|o| (o.schedule_id, o.user_name))
        .collect();
    let schedules = state
        .store
        .schedules()
        .await?
        .into_iter()
        .map(|s| ScheduleRow {
            on_call: now.get(&s.id).cloned().flatten(),
            id: s.id,
            layers: s.layers.len(),
            name: s.name,
            description: s.description,
            time_zone: s.time_zone,
        })
        .collect();
    let body = SchedulesPage {
        chrome: Chrome::new(&who.0, "oncall", "Schedules"),
        schedules,
    };
    Ok(page(&body))
}
