//! The room's "Status page" panel: the status-page posts about this incident
//! (with a quick update for each open one) and a form to publish a new one.
//!
//! Public wording is written on purpose: the publish form starts empty — the
//! incident's title and description are never copied into it — and offers
//! the page's templates instead. It is prefilled only with what
//! `GET /api/v1/incidents/{id}/status-proposals` proposes: the components
//! linked to the incident's services, each with the status its severity
//! suggests. Several pages: a chooser (a GET form, so no script is needed)
//! draws the form for one page at a time. The form sends only what the
//! person typed and chose.

use axum::extract::{Path, State};
use axum::response::Response;
use tocsin_core::model::Incident;
use tocsin_core::status_page::{PostKind, PostStatus};
use tocsin_store::WebSession;

use super::view;
use crate::api::incidents::incident_id;
use crate::api::path_id;
use crate::api::status_posts::publish_incident;
use crate::api::status_updates::{add_update, UpdateRequest};
use crate::state::AppState;
use crate::web::common::{page, see_other, Chrome, WebResult};
use crate::web::session::{field, AsResponder, CsrfPairs};
use crate::web::statuspages::{
    chosen_id, component_choices, group_names, impact_opts, incident_request, post_status_opts,
    posted, posted_choices, refused, Badge, ComponentChoice, Failed, Fill, Opt,
};
use crate::ApiError;

/// A post about this incident, with its quick-update form.
pub(crate) struct PostLine {
    pub id: i64,
    pub name: String,
    pub page_name: String,
    pub slug: String,
    pub badge: Badge,
    pub updated: String,
    pub open: bool,
    pub statuses: Vec<Opt>,
    pub body: String,
    pub notify: bool,
    pub error: Option<String>,
}

/// The publish form, for one chosen page.
pub(crate) struct PublishForm {
    /// Every page, for the chooser; the chosen one selected.
    pub pages: Vec<Opt>,
    pub page_id: i64,
    pub page_name: String,
    /// The chosen page's incident templates.
    pub templates: Vec<Opt>,
    pub name: String,
    pub body: String,
    pub statuses: Vec<Opt>,
    pub impacts: Vec<Opt>,
    pub components: Vec<ComponentChoice>,
    pub proposed: usize,
    pub notify: bool,
    pub error: Option<String>,
}

/// What the panel shows.
pub(crate) struct StatusPanel {
    pub posts: Vec<PostLine>,
    pub publish: Option<PublishForm>,
}

/// What the room's address chose (`status_page`, `status_template`) and,
/// after a refused form, which form it was and what it posted.
#[derive(Default)]
pub(crate) struct PanelState {
    pub page: Option<String>,
    pub template: Option<String>,
    pub failed: Option<Failed>,
}

impl PanelState {
    fn fill(&self, form: &str) -> Fill<'_> {
        Failed::fill(&self.failed, form)
    }

    fn error(&self, form: &str) -> Option<String> {
        Failed::error(&self.failed, form)
    }
}

/// A number from the address; anything else is no choice.
fn lenient_id(v: Option<&str>) -> Option<i64> {
    v.and_then(|v| v.trim().parse().ok())
}

/// The panel of incident `inc` as `chrome`'s user sees it.
pub(crate) async fn panel(
    state: &AppState,
    chrome: &Chrome,
    inc: &Incident,
    st: &PanelState,
) -> WebResult<StatusPanel> {
    let pages = state.store.status_pages().await?;
    let mut posts = Vec::new();
    for p in state.store.posts_for_incident(inc.id).await? {
        let form = format!("update-{}", p.id);
        let fill = st.fill(&form);
        let page = pages.iter().find(|x| x.id == p.page_id);
        posts.push(PostLine {
            id: p.id,
            page_name: page.map(|x| x.name.clone()).unwrap_or_default(),
            slug: page.map(|x| x.slug.clone()).unwrap_or_default(),
            badge: Badge::post(p.status),
            updated: chrome.time_opt(&p.updates.first().map(|u| u.display_at)),
            open: !p.status.is_closed(),
            statuses: post_status_opts(p.kind, &fill.text("status", p.status.as_str())),
            body: fill.text("body", ""),
            notify: fill.checked("notify", true),
            error: st.error(&form),
            name: p.name,
        });
    }
    if !chrome.can_respond || pages.is_empty() {
        return Ok(StatusPanel {
            posts,
            publish: None,
        });
    }
    let fill = st.fill("publish");
    let proposals = state
        .store
        .status_proposals(inc.id, &state.settings)
        .await?;
    let wanted = fill
        .0
        .and_then(|p| lenient_id(field(p, "page_id")))
        .or_else(|| lenient_id(st.page.as_deref()));
    let page = wanted
        .and_then(|w| pages.iter().find(|p| p.id == w))
        .or_else(|| {
            proposals
                .first()
                .and_then(|x| pages.iter().find(|p| p.id == x.page_id))
        })
        .unwrap_or(&pages[0]);
    let templates = state.store.status_templates(page.id).await?;
    let template = if fill.0.is_none() {
        lenient_id(st.template.as_deref()).and_then(|t| {
            templates
                .iter()
                .find(|x| x.id == t && x.kind == PostKind::Incident)
        })
    } else {
        None
    };
    let components = state.store.components(page.id).await?;
    let chosen = match fill.0 {
        Some(pairs) => posted_choices(pairs),
        None => proposals
            .iter()
            .filter(|x| x.page_id == page.id)
            .map(|x| (x.component_id, x.proposed.as_str().to_string()))
            .collect(),
    };
    let proposed = proposals.iter().filter(|x| x.page_id == page.id).count();
    let status = template
        .and_then(|t| t.status)
        .map_or("investigating", PostStatus::as_str);
    let publish = PublishForm {
        pages: pages
            .iter()
            .map(|p| Opt::new(p.id.to_string(), p.name.clone(), p.id == page.id))
            .collect(),
        page_id: page.id,
        page_name: page.name.clone(),
        templates: templates
            .iter()
            .filter(|t| t.kind == PostKind::Incident)
            .map(|t| {
                let sel = template.is_some_and(|x| x.id == t.id);
                Opt::new(t.id.to_string(), t.name.clone(), sel)
            })
            .collect(),
        name: fill.text("name", template.map_or("", |t| &t.title)),
        body: fill.text("body", template.map_or("", |t| &t.body)),
        statuses: post_status_opts(PostKind::Incident, &fill.text("status", status)),
        impacts: impact_opts(&fill.text("impact", ""), "from the components"),
        components: component_choices(
            &components,
            &group_names(state, page.id).await?,
            &chosen,
            "not affected",
        ),
        proposed,
        notify: fill.checked("notify", true),
        error: st.error("publish"),
    };
    Ok(StatusPanel {
        posts,
        publish: Some(publish),
    })
}

/// The room again, with a refused panel form shown filled in.
async fn room_refused(
    state: &AppState,
    who: &WebSession,
    id: i64,
    form: String,
    e: ApiError,
    pairs: Vec<(String, String)>,
) -> WebResult<Response> {
    let refused = refused(e)?;
    let status = refused.status;
    let st = PanelState {
        failed: Some(Failed {
            form,
            refused,
            pairs,
        }),
        ..Default::default()
    };
    let body = view::room(state, who, id, None, st).await?;
    let mut resp = page(&body);
    *resp.status_mut() = status;
    Ok(resp)
}

/// Publishes a status-page incident about this incident: its events go on
/// this incident's timeline too.
pub(super) async fn publish(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let inc = state.store.incident(id).await?;
    let request = chosen_id("page_id", field(&pairs, "page_id").unwrap_or(""))
        .and_then(|page| Ok((page, incident_request(&pairs, Some(id))?)));
    let result = match request {
        Ok((page, r)) => publish_incident(&state, &who.actor(), page, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(see_other(format!(
            "/incidents/{}?notice=status_published#status-page",
            inc.number
        ))),
        Err(e) => room_refused(&state, &who.0, id, "publish".into(), e, pairs).await,
    }
}

/// Posts an update to one of this incident's status-page posts.
pub(super) async fn update(
    State(state): State<AppState>,
    who: AsResponder,
    Path((number, post_id)): Path<(String, String)>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let inc = state.store.incident(id).await?;
    let post_id = path_id("post_id", &post_id)?;
    let post = state.store.post(post_id).await?;
    if post.incident_id != Some(id) {
        return Err(ApiError::NotFound(format!("status post {post_id} of {}", inc.number)).into());
    }
    let r = UpdateRequest {
        status: field(&pairs, "status").unwrap_or("").to_string(),
        body: posted(&pairs, "body").unwrap_or_default(),
        components: Vec::new(),
        notify: field(&pairs, "notify").is_some(),
        display_at: None,
        name: None,
        impact: None,
    };
    match add_update(&state, &who.actor(), post_id, r).await {
        Ok(_) => Ok(see_other(format!(
            "/incidents/{}?notice=status_updated#status-post-{post_id}",
            inc.number
        ))),
        Err(e) => {
            let form = format!("update-{post_id}");
            room_refused(&state, &who.0, id, form, e, pairs).await
        }
    }
}
