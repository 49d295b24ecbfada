//! /api/v1/postmortems, /api/v1/incidents/{id}/postmortem, /api/v1/action-items
//! and /api/v1/postmortem-template: postmortems generated from the incident's
//! record, edited in revisions (a stale edit is merged three ways, or refused
//! with `409 edit_conflict` carrying the current text and the overlapping
//! ranges, nothing written), reviewed along one table (draft → in_review →
//! published, back to draft), exported as Markdown and print-ready HTML, and
//! their action items. Viewers read, responders write, admins set the template.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::postmortem::tracker::{NoTracker, Tracker};
use tocsin_core::postmortem::{
    parse_due_date, ActionPriority, ActionStatus, ConflictRange, ReviewStatus, Template,
};
use tocsin_store::postmortems::action_items::{ActionItem, ActionItemFields};
use tocsin_store::postmortems::trackers::IssueRefused;
use tocsin_store::postmortems::{
    PostmortemRecord, PostmortemRevision, PostmortemSummary, SaveOutcome,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_id;
use super::{opt_i64, path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiJsonOrEmpty, ApiQuery, AsAdmin, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_postmortem))
        .routes(routes!(list_postmortems))
        .routes(routes!(get_postmortem, update_postmortem))
        .routes(routes!(save_postmortem_body))
        .routes(routes!(postmortem_revisions))
        .routes(routes!(add_postmortem_reviewer))
        .routes(routes!(approve_postmortem))
        .routes(routes!(export_postmortem_markdown))
        .routes(routes!(print_postmortem))
        .routes(routes!(list_postmortem_action_items, create_action_item))
        .routes(routes!(update_action_item))
        .routes(routes!(create_action_item_issue))
        .routes(routes!(list_action_items))
        .routes(routes!(get_postmortem_template, set_postmortem_template))
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn review_conflict(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict {
            field: Some(f),
            message,
            ..
        } if f == "status" => ApiError::Conflict {
            code: "transition_not_allowed",
            message,
            field: Some(f),
        },
        e => e,
    }
}

/// Which incidents a new postmortem reviews.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRequest {
    /// Related incidents reviewed together with the one in the path
    /// (ids or `INC-n`).
    #[serde(default)]
    incident_ids: Vec<serde_json::Value>,
}

/// Create the postmortem of an incident (or of several related ones): the
/// draft generated from their record is revision 1.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/postmortem", tag = "postmortems",
    params(("id" = String, Path, description = "`42` or `INC-42`")), request_body = CreateRequest,
    responses((status = 201, body = PostmortemRecord), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn create_postmortem(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<CreateRequest>,
) -> ApiResult<(StatusCode, Json<PostmortemRecord>)> {
    let mut ids = vec![incident_id(&id)?];
    for (i, v) in r.incident_ids.iter().enumerate() {
        let field = format!("incident_ids[{i}]");
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(invalid(field, "must be an incident id or number")),
        };
        ids.push(
            incident_id(&s).map_err(|_| invalid(&field, format!("`{s}` is not an incident")))?,
        );
    }
    let rec = state
        .store
        .create_postmortem(
            &ids,
            &state.settings,
            chrono_tz::UTC,
            &c.actor(),
            state.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

/// Filters of the postmortem list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Words the title or text must all contain.
    q: Option<String>,
    /// `draft`, `in_review` or `published`.
    status: Option<String>,
}

/// Postmortems, most recently saved first; `q` searches their title and text.
#[utoipa::path(get, path = "/api/v1/postmortems", tag = "postmortems", params(ListQuery),
    responses((status = 200, body = Vec<PostmortemSummary>), (status = 400, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_postmortems(
    State(state): State<AppState>,
    _c: AsViewer,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<PostmortemSummary>>> {
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| ReviewStatus::parse("status", s))
        .transpose()?;
    Ok(Json(
        state.store.postmortems(q.q.as_deref(), status, 500).await?,
    ))
}

/// A postmortem with its current text, revision, reviewers and next states.
#[utoipa::path(get, path = "/api/v1/postmortems/{id}", tag = "postmortems", params(("id" = i64, Path)),
    responses((status = 200, body = PostmortemRecord), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_postmortem(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<PostmortemRecord>> {
    Ok(Json(state.store.postmortem(path_id("id", &id)?).await?))
}

/// Changes to a postmortem's title or review status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchRequest {
    /// New title.
    title: Option<String>,
    /// Next review status: `draft`, `in_review` or `published` (see `allowed_next`).
    status: Option<String>,
}

/// Rename a postmortem or move its review (draft → in_review → published,
/// back to draft). Publishing needs every reviewer's approval.
#[utoipa::path(patch, path = "/api/v1/postmortems/{id}", tag = "postmortems", params(("id" = i64, Path)),
    request_body = PatchRequest,
    responses((status = 200, body = PostmortemRecord), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn update_postmortem(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<PatchRequest>,
) -> ApiResult<Json<PostmortemRecord>> {
    let id = path_id("id", &id)?;
    let status = r
        .status
        .as_deref()
        .map(|s| ReviewStatus::parse("status", s))
        .transpose()?;
    state
        .store
        .update_postmortem(id, r.title.as_deref(), status, &c.actor(), state.now())
        .await
        .map_err(|e| review_conflict(e.into()))
        .map(Json)
}

/// An edit of the text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BodyRequest {
    /// The revision the edit started from.
    base_revision: i64,
    /// The whole text (Markdown).
    body: String,
}

/// What a saved edit became.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Saved {
    /// The new revision.
    revision: i64,
    /// Whether it was merged with revisions saved since its base.
    merged: bool,
    /// The postmortem as saved.
    postmortem: PostmortemRecord,
}

/// The error of an edit that overlaps one saved meanwhile.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EditConflict {
    error: EditConflictDetail,
}

/// `edit_conflict`: nothing was written; reconcile with the current text and save again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EditConflictDetail {
    /// `edit_conflict`.
    code: &'static str,
    /// What happened.
    message: String,
    /// `body`.
    field: &'static str,
    /// The text saved meanwhile.
    current_body: String,
    /// Its revision: the base for the next try.
    current_revision: i64,
    /// Line ranges (0-based, end exclusive) that overlap, in the base, in your
    /// text and in the current text.
    #[schema(value_type = Vec<Object>)]
    conflicts: Vec<ConflictRange>,
}

pub(crate) fn conflict_response(
    current: String,
    revision: i64,
    ranges: Vec<ConflictRange>,
) -> Response {
    let message = format!(
        "revision {revision} was saved meanwhile and changes the same lines in {} place(s); nothing was saved",
        ranges.len()
    );
    (
        StatusCode::CONFLICT,
        Json(EditConflict {
            error: EditConflictDetail {
                code: "edit_conflict",
                message,
                field: "body",
                current_body: current,
                current_revision: revision,
                conflicts: ranges,
            },
        }),
    )
        .into_response()
}

/// Save an edit of the text made from `base_revision`: the next revision if
/// the base is current; merged with the revisions saved since if the edits do
/// not overlap (`merged: true`); otherwise 409 `edit_conflict` with the
/// current text, its revision and the overlapping ranges, and nothing saved.
#[utoipa::path(put, path = "/api/v1/postmortems/{id}/body", tag = "postmortems", params(("id" = i64, Path)),
    request_body = BodyRequest,
    responses((status = 200, body = Saved), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = EditConflict)),
    security(("token" = ["responder"])))]
async fn save_postmortem_body(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<BodyRequest>,
) -> ApiResult<Response> {
    let id = path_id("id", &id)?;
    match state
        .store
        .save_postmortem(id, r.base_revision, &r.body, &c.actor(), state.now())
        .await?
    {
        SaveOutcome::Saved { revision, merged } => Ok(Json(Saved {
            revision,
            merged,
            postmortem: state.store.postmortem(id).await?,
        })
        .into_response()),
        SaveOutcome::Conflict {
            current,
            revision,
            ranges,
        } => Ok(conflict_response(current, revision, ranges)),
    }
}

/// Every revision, newest first, with author and time.
#[utoipa::path(get, path = "/api/v1/postmortems/{id}/revisions", tag = "postmortems",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<PostmortemRevision>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn postmortem_revisions(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<PostmortemRevision>>> {
    Ok(Json(
        state
            .store
            .postmortem_revisions(path_id("id", &id)?)
            .await?,
    ))
}

/// A reviewer to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewerRequest {
    /// The user.
    user_id: i64,
}

/// Add a reviewer; every reviewer must approve before it is published.
#[utoipa::path(post, path = "/api/v1/postmortems/{id}/reviewers", tag = "postmortems",
    params(("id" = i64, Path)), request_body = ReviewerRequest,
    responses((status = 200, body = PostmortemRecord), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn add_postmortem_reviewer(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ReviewerRequest>,
) -> ApiResult<Json<PostmortemRecord>> {
    let id = path_id("id", &id)?;
    Ok(Json(
        state
            .store
            .add_postmortem_reviewer(id, r.user_id, &c.actor(), state.now())
            .await?,
    ))
}

/// Approve the text as a reviewer (only while in review).
#[utoipa::path(post, path = "/api/v1/postmortems/{id}/approve", tag = "postmortems",
    params(("id" = i64, Path)),
    responses((status = 200, body = PostmortemRecord), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn approve_postmortem(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
) -> ApiResult<Json<PostmortemRecord>> {
    let id = path_id("id", &id)?;
    state
        .store
        .approve_postmortem(id, &c.actor(), state.now())
        .await
        .map_err(|e| review_conflict(e.into()))
        .map(Json)
}

/// The postmortem as a Markdown file.
#[utoipa::path(get, path = "/api/v1/postmortems/{id}/export.md", tag = "postmortems",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/markdown", body = String, description = "The Markdown document"),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn export_postmortem_markdown(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let pm = state.store.postmortem(path_id("id", &id)?).await?;
    Ok(markdown_download(pm))
}

/// A postmortem's text as a Markdown file to save.
pub(crate) fn markdown_download(pm: PostmortemRecord) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/markdown; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"postmortem-{}.md\"", pm.id),
            ),
        ],
        pm.body,
    )
        .into_response()
}

/// The print-ready page of a postmortem: its text as HTML, everything escaped.
pub(crate) fn print_html(pm: &PostmortemRecord) -> String {
    use tocsin_core::analytics::svg::escape;
    let reviewers: Vec<String> = pm
        .reviewers
        .iter()
        .map(|r| {
            format!(
                "{}{}",
                escape(&r.name),
                if r.approved_at.is_some() {
                    " (approved)"
                } else {
                    ""
                }
            )
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font-family:Georgia,serif;max-width:46rem;margin:2rem auto;line-height:1.5;color:#111}}\
         h1,h2{{font-family:Helvetica,Arial,sans-serif}}h2{{border-bottom:1px solid #ccc;page-break-after:avoid}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px}}\
         .meta{{color:#555;font-size:.9em}}@media print{{body{{margin:0}}a{{color:inherit}}}}</style></head>\n\
         <body>\n<p class=\"meta\">Postmortem {id} · {status} · revision {rev}{published}{reviewers}</p>\n{body}</body></html>\n",
        title = escape(&pm.title),
        id = pm.id,
        status = pm.status,
        rev = pm.revision,
        published = pm
            .published_at
            .map(|t| format!(" · published {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default(),
        reviewers = if reviewers.is_empty() {
            String::new()
        } else {
            format!(" · reviewers: {}", reviewers.join(", "))
        },
        body = crate::web::markdown::render(&pm.body),
    )
}

/// The postmortem as a print-ready HTML page.
#[utoipa::path(get, path = "/api/v1/postmortems/{id}/print", tag = "postmortems",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/html", body = String, description = "The page"),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn print_postmortem(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let pm = state.store.postmortem(path_id("id", &id)?).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        print_html(&pm),
    )
        .into_response())
}

/// An action item to create or change; on change, only the fields given
/// (`null` clears owner, due date and link).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemRequest {
    /// What to do.
    title: Option<String>,
    /// Who does it (a user id).
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i64>)]
    owner_id: Option<Option<i64>>,
    /// Due day, `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    due_date: Option<Option<String>>,
    /// `low`, `medium` (default) or `high`.
    priority: Option<String>,
    /// `open` (default), `in_progress`, `done` or `cancelled`.
    status: Option<String>,
    /// The item in an issue tracker.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    external_url: Option<Option<String>>,
    /// The incident, one of the postmortem's (default: its first); on create only.
    incident_id: Option<i64>,
}

fn some<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl ItemRequest {
    fn fields(self) -> ApiResult<ActionItemFields> {
        Ok(ActionItemFields {
            title: self.title,
            owner_id: self.owner_id,
            due_date: match self.due_date {
                Some(Some(d)) if !d.trim().is_empty() => {
                    Some(Some(parse_due_date("due_date", &d)?))
                }
                Some(_) => Some(None),
                None => None,
            },
            priority: self
                .priority
                .as_deref()
                .map(|p| ActionPriority::parse("priority", p))
                .transpose()?,
            status: self
                .status
                .as_deref()
                .map(|s| ActionStatus::parse("status", s))
                .transpose()?,
            external_url: self.external_url,
            incident_id: self.incident_id,
        })
    }
}

/// A postmortem's action items.
#[utoipa::path(get, path = "/api/v1/postmortems/{id}/action-items", tag = "postmortems",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ActionItem>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_postmortem_action_items(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ActionItem>>> {
    let id = path_id("id", &id)?;
    state.store.postmortem(id).await?;
    Ok(Json(
        state
            .store
            .action_items(Some(id), None, false, state.now())
            .await?,
    ))
}

/// Add an action item.
#[utoipa::path(post, path = "/api/v1/postmortems/{id}/action-items", tag = "postmortems",
    params(("id" = i64, Path)), request_body = ItemRequest,
    responses((status = 201, body = ActionItem), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn create_action_item(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ItemRequest>,
) -> ApiResult<(StatusCode, Json<ActionItem>)> {
    let id = path_id("id", &id)?;
    let item = state
        .store
        .create_action_item(id, r.fields()?, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// Change an action item: only the fields given.
#[utoipa::path(patch, path = "/api/v1/postmortems/{id}/action-items/{item_id}", tag = "postmortems",
    params(("id" = i64, Path), ("item_id" = i64, Path)), request_body = ItemRequest,
    responses((status = 200, body = ActionItem), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn update_action_item(
    State(state): State<AppState>,
    c: AsResponder,
    Path((id, item_id)): Path<(String, String)>,
    ApiJson(r): ApiJson<ItemRequest>,
) -> ApiResult<Json<ActionItem>> {
    let id = path_id("id", &id)?;
    let item_id = path_id("item_id", &item_id)?;
    Ok(Json(
        state
            .store
            .update_action_item(id, item_id, r.fields()?, &c.actor(), state.now())
            .await?,
    ))
}

/// Which tracker an item's issue goes to.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueRequest {
    /// `jira` or `github`; may be left out when only one is configured.
    tracker: Option<String>,
}

/// An issue being created.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssueStarted {
    /// The workflow run creating it (`GET /api/v1/workflow-runs/{id}`).
    run_id: i64,
    /// The item, its `tracker_status` `running`.
    action_item: ActionItem,
}

/// Create the item's issue in Jira or GitHub (`[workflows.jira]
/// action_items_project`, `[workflows.github] action_items_repo`). The body
/// may be empty when one tracker is configured. A workflow run creates the
/// issue (retries, the outgoing policy and secrets as for any step); when it
/// ends the item's `tracker_status` is `succeeded` with the issue as its link
/// (`external_url`, `tracker_key`) or `failed` with `tracker_error`. 400
/// `invalid_field` when both are configured and `tracker` is not given. 409
/// `tracker_not_configured`, `already_linked` (clear `external_url` first),
/// `item_closed` (done or cancelled), `run_in_progress` or `run_refused`.
#[utoipa::path(post, path = "/api/v1/postmortems/{id}/action-items/{item_id}/issue", tag = "postmortems",
    params(("id" = i64, Path), ("item_id" = i64, Path)), request_body(content = IssueRequest, description = "May be empty"),
    responses((status = 202, body = IssueStarted), (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn create_action_item_issue(
    State(state): State<AppState>,
    c: AsResponder,
    Path((id, item_id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    ApiJsonOrEmpty(r): ApiJsonOrEmpty<IssueRequest>,
) -> ApiResult<(StatusCode, Json<IssueStarted>)> {
    let id = path_id("id", &id)?;
    let item_id = path_id("item_id", &item_id)?;
    let asked = r
        .tracker
        .as_deref()
        .map(|t| Tracker::parse("tracker", t))
        .transpose()?;
    let base = super::snippets::base_url(&state, &headers);
    let (action_item, run_id) = start_issue(&state, &c.actor(), &base, id, item_id, asked).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(IssueStarted {
            run_id,
            action_item,
        }),
    ))
}

/// Starts the run creating an item's issue; refusals as API errors.
pub(crate) async fn start_issue(
    state: &AppState,
    actor: &tocsin_store::Actor,
    base_url: &str,
    pm: i64,
    item_id: i64,
    asked: Option<Tracker>,
) -> ApiResult<(ActionItem, i64)> {
    let refused = |code: &'static str, message: String, field: &str| ApiError::Conflict {
        code,
        message,
        field: Some(field.into()),
    };
    let (tracker, definition) =
        state
            .workflows
            .trackers
            .choose_workflow(asked)
            .map_err(|e| match e {
                NoTracker::Ambiguous(_) => ApiError::Invalid {
                    field: "tracker".into(),
                    message: e.to_string(),
                },
                e => refused("tracker_not_configured", e.to_string(), "tracker"),
            })?;
    match state
        .store
        .create_action_item_issue(pm, item_id, tracker, &definition, base_url, actor, state.now())
        .await?
    {
        Ok(started) => Ok(started),
        Err(IssueRefused::AlreadyLinked(url)) => Err(refused(
            "already_linked",
            format!("action item {item_id} already links to {url}; clear external_url to create an issue"),
            "external_url",
        )),
        Err(IssueRefused::Closed(status)) => Err(refused(
            "item_closed",
            format!("action item {item_id} is {status}; reopen it to create an issue"),
            "status",
        )),
        Err(IssueRefused::Running(run)) => Err(refused(
            "run_in_progress",
            format!("action item {item_id}'s issue is being created now (run {run})"),
            "tracker",
        )),
        Err(IssueRefused::Refused(r)) => Err(refused("run_refused", r.to_string(), "tracker")),
    }
}

/// Filters of the action item list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ItemQuery {
    /// Only this owner's (a user id).
    owner: Option<String>,
    /// `true`: only open or in-progress items past their due day.
    overdue: Option<String>,
}

/// Action items of every postmortem, by due day.
#[utoipa::path(get, path = "/api/v1/action-items", tag = "postmortems", params(ItemQuery),
    responses((status = 200, body = Vec<ActionItem>), (status = 400, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_action_items(
    State(state): State<AppState>,
    _c: AsViewer,
    ApiQuery(q): ApiQuery<ItemQuery>,
) -> ApiResult<Json<Vec<ActionItem>>> {
    let owner = opt_i64("owner", q.owner.as_deref())?;
    let overdue = match q.overdue.as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(o) => return Err(invalid("overdue", format!("`{o}` is not true or false"))),
    };
    Ok(Json(
        state
            .store
            .action_items(None, owner, overdue, state.now())
            .await?,
    ))
}

/// The postmortem template: its sections in order.
#[utoipa::path(get, path = "/api/v1/postmortem-template", tag = "postmortems",
    responses((status = 200, body = Object, description = "`{\"sections\": [{\"title\", \"hint\", \"generated\"}]}`")),
    security(("token" = ["viewer"])))]
async fn get_postmortem_template(
    State(state): State<AppState>,
    _c: AsViewer,
) -> ApiResult<Json<Template>> {
    Ok(Json(state.store.postmortem_template().await?))
}

/// Replace the template used for new postmortems: 1 to 40 sections, titles
/// unique; `generated` (summary, customer_impact, timeline, root_causes,
/// detection, response, recovery) each at most once.
#[utoipa::path(put, path = "/api/v1/postmortem-template", tag = "postmortems",
    request_body(content = Object, description = "`{\"sections\": [{\"title\", \"hint\", \"generated\"}]}`"),
    responses((status = 200, body = Object), (status = 400, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn set_postmortem_template(
    State(state): State<AppState>,
    c: AsAdmin,
    ApiJson(t): ApiJson<Template>,
) -> ApiResult<Json<Template>> {
    state
        .store
        .set_postmortem_template(&t, &c.actor(), state.now())
        .await?;
    Ok(Json(state.store.postmortem_template().await?))
}
