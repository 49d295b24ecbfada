//! `/status-pages`: every page with its overall status, its open incidents
//! and a link to what the public sees; the admin's form for a new page.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tocsin_core::status_page::records::StatusPage;
use tocsin_core::status_page::{Indicator, PostKind, PostStatus, Visibility};
use tocsin_store::WebSession;

use super::form::{posted, refused, Badge, Fill, Opt, Refused};
use crate::api::status_pages::{create as create_page, StatusPageRequest};
use crate::state::AppState;
use crate::web::common::{page, see_other, Chrome, WebResult};
use crate::web::session::{field, AsAdmin, AsViewer, CsrfPairs};

/// At most this many open posts are read per page for its indicator.
pub(super) const OPEN_POSTS: i64 = 500;

struct Row {
    id: i64,
    name: String,
    slug: String,
    internal: bool,
    domain: Option<String>,
    indicator: Badge,
    components: usize,
    open_incidents: usize,
}

/// The new-page form's contents.
struct NewForm {
    slug: String,
    name: String,
    visibility: Vec<Opt>,
    time_zone: String,
    domain: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "statuspage_list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    form: NewForm,
}

/// A page's overall status and open incidents, from its components and open posts.
pub(super) async fn overall(
    state: &AppState,
    p: &StatusPage,
) -> WebResult<(Indicator, usize, usize)> {
    let components = state.store.components(p.id).await?;
    let open = state.store.posts(p.id, None, true, OPEN_POSTS).await?;
    let incidents: Vec<_> = open
        .iter()
        .filter(|o| o.kind == PostKind::Incident)
        .collect();
    let in_progress = open.iter().any(|o| {
        o.kind == PostKind::Maintenance
            && matches!(o.status, PostStatus::InProgress | PostStatus::Verifying)
    });
    let indicator = Indicator::overall(
        components.iter().map(|c| c.status),
        incidents.iter().map(|o| o.impact),
        in_progress,
    );
    Ok((indicator, incidents.len(), components.len()))
}

pub(super) fn visibility_opts(selected: &str) -> Vec<Opt> {
    [
        ("public", "Public: anyone"),
        ("internal", "Internal: signed-in users only"),
    ]
    .iter()
    .map(|(v, l)| Opt::new(*v, *l, *v == selected))
    .collect()
}

async fn render(
    state: &AppState,
    who: &WebSession,
    typed: Option<&[(String, String)]>,
    refusal: Option<Refused>,
) -> WebResult<Response> {
    let chrome = Chrome::new(who, "statuspages", "Status pages");
    let mut rows = Vec::new();
    for p in state.store.status_pages().await? {
        let (indicator, open_incidents, components) = overall(state, &p).await?;
        rows.push(Row {
            internal: p.visibility == Visibility::Internal,
            indicator: Badge::indicator(indicator),
            components,
            open_incidents,
            id: p.id,
            name: p.name,
            slug: p.slug,
            domain: p.domain,
        });
    }
    let fill = Fill(typed);
    let form = NewForm {
        slug: fill.text("slug", ""),
        name: fill.text("name", ""),
        visibility: visibility_opts(&fill.text("visibility", "public")),
        time_zone: fill.text("time_zone", "UTC"),
        domain: fill.text("domain", ""),
        error: refusal.as_ref().map(|r| r.message.clone()),
    };
    let mut resp = page(&ListPage { chrome, rows, form });
    if let Some(r) = refusal {
        *resp.status_mut() = r.status;
    }
    Ok(resp)
}

pub(super) async fn list(State(state): State<AppState>, who: AsViewer) -> WebResult<Response> {
    render(&state, &who.0, None, None).await
}

/// The new page as the API's request; blank optional fields are left to its defaults.
fn request(pairs: &[(String, String)]) -> Result<StatusPageRequest, crate::ApiError> {
    let text = |k: &str| posted(pairs, k).unwrap_or_default();
    let given = |k: &str| Some(text(k)).filter(|v| !v.trim().is_empty());
    Ok(StatusPageRequest {
        slug: text("slug"),
        name: text("name"),
        description: text("description"),
        visibility: match field(pairs, "visibility").unwrap_or("public") {
            "" => None,
            v => Some(tocsin_core::status_page::Visibility::parse(
                "visibility",
                v,
            )?),
        },
        domain: given("domain"),
        time_zone: given("time_zone"),
        brand_color: given("brand_color"),
        support_url: given("support_url"),
        allow_subscribers: true,
    })
}

pub(super) async fn create(
    State(state): State<AppState>,
    who: AsAdmin,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let result = match request(&pairs) {
        Ok(r) => create_page(&state, &who.actor(), r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => Ok(see_other(format!("/status-pages/{}", p.id))),
        Err(e) => render(&state, &who.0, Some(&pairs), Some(refused(e)?)).await,
    }
}
