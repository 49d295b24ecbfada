//! Escalation policies: admin CRUD, assigning one to a service, and who each
//! level would page at an instant. Paging itself (the engine) is not here yet.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tocsin_core::escalation::{Level, Target};
use tocsin_core::model::required_text;
use tocsin_core::schedule::on_call_at;
use tocsin_core::time::Timestamp;
use tocsin_store::{PolicyChanges, ScheduleOverride, StoreError, StoredPolicy};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{opt_time, path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AsAdmin, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(get_policy, update_policy, delete_policy))
        .routes(routes!(policy_on_call))
        .routes(routes!(set_service_policy))
        .routes(routes!(service_on_call))
}

const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 2000;

/// A new escalation policy, or its replacement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyRequest {
    /// Unique name, e.g. `Platform`.
    pub(crate) name: String,
    /// What it is for.
    #[serde(default)]
    pub(crate) description: String,
    /// The levels, first paged first; each has targets
    /// (`{"user": 1}`, `{"schedule": 2}`, `{"team": 3}`, `{"policy": 4}`) and a delay.
    pub(crate) levels: Vec<Level>,
    /// How many times the whole policy runs again after the first pass (0–9).
    #[serde(default)]
    pub(crate) repeat: u32,
}

/// Which escalation policy a service uses.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServicePolicy {
    /// The policy; null for none.
    escalation_policy_id: Option<i64>,
}

/// An instant.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AtQuery {
    /// The instant, RFC 3339 (default now).
    at: Option<String>,
}

/// One user a level would page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PagedUser {
    /// The user.
    pub(crate) user_id: i64,
    /// Their name.
    pub(crate) user_name: String,
    /// The level's target it came from (for a hand-off, the `policy` target).
    pub(crate) target: Target,
    /// Index of the target on the level.
    pub(crate) target_index: usize,
}

/// Who one level would page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LevelOnCall {
    /// Index of the level (0 is the first).
    pub(crate) level: usize,
    /// Minutes before the next level.
    pub(crate) delay_minutes: u32,
    /// The users, each once, in target order.
    pub(crate) users: Vec<PagedUser>,
    /// Targets that would page nobody (nobody on call, an empty team).
    pub(crate) empty_targets: Vec<Target>,
}

/// Who a policy would page at an instant, level by level.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PolicyOnCall {
    /// The policy.
    pub(crate) escalation_policy_id: i64,
    /// Its name.
    pub(crate) escalation_policy_name: String,
    /// The instant asked about.
    pub(crate) at: DateTime<Utc>,
    /// The levels.
    pub(crate) levels: Vec<LevelOnCall>,
}

/// Who a service's escalation policy would page at an instant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceOnCall {
    /// The service.
    service_id: i64,
    /// The instant asked about.
    at: DateTime<Utc>,
    /// Its policy's answer; null when the service has no policy.
    escalation_policy: Option<PolicyOnCall>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn checked_text(r: &PolicyRequest) -> ApiResult<String> {
    let name = required_text("name", &r.name, MAX_NAME)?;
    if r.description.len() > MAX_DESCRIPTION {
        return Err(invalid(
            "description",
            format!("at most {MAX_DESCRIPTION} bytes"),
        ));
    }
    Ok(name)
}

/// All escalation policies, by name.
#[utoipa::path(get, path = "/api/v1/escalation-policies", tag = "escalation",
    responses((status = 200, body = Vec<StoredPolicy>)), security(("token" = ["viewer"])))]
async fn list_policies(
    State(state): State<AppState>,
    _c: AsViewer,
) -> ApiResult<Json<Vec<StoredPolicy>>> {
    Ok(Json(state.store.escalation_policies().await?))
}

/// Create an escalation policy: levels of users, schedules, teams or hand-offs to other policies.
#[utoipa::path(post, path = "/api/v1/escalation-policies", tag = "escalation", request_body = PolicyRequest,
    responses((status = 201, body = StoredPolicy), (status = 400, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_policy(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(r): ApiJson<PolicyRequest>,
) -> ApiResult<(StatusCode, Json<StoredPolicy>)> {
    let created = create(&state, &c.actor(), r).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Checks and stores a new policy (the API's and the web form's one way in).
pub(crate) async fn create(
    state: &AppState,
    actor: &tocsin_store::Actor,
    r: PolicyRequest,
) -> ApiResult<StoredPolicy> {
    let name = checked_text(&r)?;
    let policy = tocsin_core::escalation::EscalationPolicy {
        levels: r.levels,
        repeat: r.repeat,
    };
    Ok(state
        .store
        .create_escalation_policy(&name, &r.description, &policy, actor, state.now())
        .await?)
}

/// Checks and stores a policy's replacement (the API's and the web form's one way in).
pub(crate) async fn replace(
    state: &AppState,
    actor: &tocsin_store::Actor,
    id: i64,
    r: PolicyRequest,
) -> ApiResult<StoredPolicy> {
    let name = checked_text(&r)?;
    let changes = PolicyChanges {
        name: Some(name),
        description: Some(r.description),
        levels: Some(r.levels),
        repeat: Some(r.repeat),
    };
    Ok(state
        .store
        .update_escalation_policy(id, &changes, actor, state.now())
        .await?)
}

/// Read an escalation policy.
#[utoipa::path(get, path = "/api/v1/escalation-policies/{id}", tag = "escalation", params(("id" = i64, Path)),
    responses((status = 200, body = StoredPolicy), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_policy(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<StoredPolicy>> {
    Ok(Json(
        state.store.escalation_policy(path_id("id", &id)?).await?,
    ))
}

/// Replace an escalation policy whole: name, description, levels and repeats.
#[utoipa::path(put, path = "/api/v1/escalation-policies/{id}", tag = "escalation", params(("id" = i64, Path)),
    request_body = PolicyRequest,
    responses((status = 200, body = StoredPolicy), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_policy(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PolicyRequest>,
) -> ApiResult<Json<StoredPolicy>> {
    let id = path_id("id", &id)?;
    Ok(Json(replace(&state, &c.actor(), id, r).await?))
}

/// Delete an escalation policy that no service uses and no other policy hands off to.
#[utoipa::path(delete, path = "/api/v1/escalation-policies/{id}", tag = "escalation", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn delete_policy(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_escalation_policy(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who each level of a policy would page at `at` (default now): users directly,
/// schedules by who is on call, teams by their members, hand-offs by the other
/// policy's first level. Nothing is paged: this only answers who would be.
#[utoipa::path(get, path = "/api/v1/escalation-policies/{id}/on-call", tag = "escalation",
    params(("id" = i64, Path), AtQuery),
    responses((status = 200, body = PolicyOnCall), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn policy_on_call(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AtQuery>,
) -> ApiResult<Json<PolicyOnCall>> {
    let id = path_id("id", &id)?;
    let at = opt_time("at", q.at.as_deref())?.unwrap_or_else(|| state.now());
    let p = state.store.escalation_policy(id).await?;
    Ok(Json(on_call(&state, &p, at).await?))
}

/// Set (or with null clear) the escalation policy of a service.
#[utoipa::path(put, path = "/api/v1/services/{id}/escalation-policy", tag = "escalation",
    params(("id" = i64, Path)), request_body = ServicePolicy,
    responses((status = 200, body = ServicePolicy), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn set_service_policy(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ServicePolicy>,
) -> ApiResult<Json<ServicePolicy>> {
    let id = path_id("id", &id)?;
    let escalation_policy_id = state
        .store
        .set_service_escalation_policy(id, r.escalation_policy_id, &c.actor(), state.now())
        .await?;
    Ok(Json(ServicePolicy {
        escalation_policy_id,
    }))
}

/// Who the service's escalation policy would page at `at` (default now), level by level.
#[utoipa::path(get, path = "/api/v1/services/{id}/on-call", tag = "escalation",
    params(("id" = i64, Path), AtQuery),
    responses((status = 200, body = ServiceOnCall), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn service_on_call(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AtQuery>,
) -> ApiResult<Json<ServiceOnCall>> {
    let id = path_id("id", &id)?;
    let at = opt_time("at", q.at.as_deref())?.unwrap_or_else(|| state.now());
    Ok(Json(ServiceOnCall {
        service_id: id,
        at,
        escalation_policy: service_on_call_at(&state, id, at).await?,
    }))
}

/// Who a service's escalation policy would page at `at`; none without a policy.
pub(crate) async fn service_on_call_at(
    state: &AppState,
    service_id: i64,
    at: Timestamp,
) -> ApiResult<Option<PolicyOnCall>> {
    Ok(
        match state.store.service_escalation_policy(service_id).await? {
            Some(p) => Some(on_call(state, &state.store.escalation_policy(p).await?, at).await?),
            None => None,
        },
    )
}

// A schedule or team deleted since the policy was written reaches nobody: the
// answer lists it among the empty targets rather than failing.
fn found<T>(r: Result<T, StoreError>) -> ApiResult<Option<T>> {
    match r {
        Ok(x) => Ok(Some(x)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Users a target reaches at `at`; a hand-off follows the other policy's first
/// level (and its hand-offs), each policy once.
async fn reach(
    state: &AppState,
    target: Target,
    at: Timestamp,
    visited: &mut BTreeSet<i64>,
) -> ApiResult<Vec<i64>> {
    let mut pending = vec![target];
    let mut out = Vec::new();
    while let Some(t) = pending.pop() {
        match t {
            Target::User(u) => out.push(u),
            Target::Team(team) => {
                if let Some(team) = found(state.store.team(team).await)? {
                    out.extend(team.member_ids);
                }
            }
            Target::Schedule(s) => {
                let Some(s) = found(state.store.schedule(s).await)? else {
                    continue;
                };
                let parsed = s.schedule().map_err(|e| {
                    ApiError::Internal(format!("schedule {} does not parse: {e}", s.id))
                })?;
                let overrides: Vec<_> = state
                    .store
                    .overrides(s.id, at - Duration::minutes(1), at + Duration::minutes(1))
                    .await?
                    .iter()
                    .map(ScheduleOverride::as_override)
                    .collect();
                out.extend(on_call_at(&parsed, &overrides, at).map(|(u, _)| u));
            }
            Target::Policy(p) => {
                if !visited.insert(p) {
                    continue;
                }
                let other = found(state.store.escalation_policy(p).await)?;
                if let Some(first) = other.as_ref().and_then(|o| o.levels.first()) {
                    // Reversed so the stack pops them in target order.
                    pending.extend(first.targets.iter().rev().copied());
                }
            }
        }
    }
    Ok(out)
}

/// Who each level of `p` would page at `at` (the API's and the pages' one answer).
pub(crate) async fn on_call(
    state: &AppState,
    p: &StoredPolicy,
    at: Timestamp,
) -> ApiResult<PolicyOnCall> {
    let names: HashMap<i64, String> = state
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let mut levels = Vec::new();
    for (i, level) in p.levels.iter().enumerate() {
        let mut users: Vec<PagedUser> = Vec::new();
        let mut empty_targets = Vec::new();
        for (j, target) in level.targets.iter().enumerate() {
            let mut visited = BTreeSet::from([p.id]);
            let found = reach(state, *target, at, &mut visited).await?;
            if found.is_empty() {
                empty_targets.push(*target);
            }
            for u in found {
                if !users.iter().any(|x| x.user_id == u) {
                    users.push(PagedUser {
                        user_id: u,
                        user_name: names.get(&u).cloned().unwrap_or_default(),
                        target: *target,
                        target_index: j,
                    });
                }
            }
        }
        levels.push(LevelOnCall {
            level: i,
            delay_minutes: level.delay_minutes,
            users,
            empty_targets,
        });
    }
    Ok(PolicyOnCall {
        escalation_policy_id: p.id,
        escalation_policy_name: p.name.clone(),
        at,
        levels,
    })
}
