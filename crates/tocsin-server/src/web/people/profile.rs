//! Your own account: name, email, time zone and password; contact methods
//! (add, verify with a code, test, delete); notification rules; handoff
//! notifications; API tokens; your calendar feed. Every action is on the
//! signed-in user only (there is no user id in these forms), with the same
//! store calls and checks as the REST API's `/api/v1/me`, `/api/v1/users/{id}/…`
//! and `/api/v1/tokens`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tocsin_core::auth::Role;
use tocsin_core::escalation::{
    contact_label, ContactAddress, ContactKind, NotificationRule, Urgency,
};
use tocsin_core::model::required_text;
use tocsin_core::Invalid;
use tocsin_store::{FeedOwner, HandoffSettings, VerificationCode};

use super::super::common::{page, see_other, Chrome, WebError, WebResult};
use super::super::login::{secure, set_cookie};
use super::super::session::{fields, AsViewer, CsrfForm, CsrfPairs, COOKIE_NAME};
use super::{checked_zone, refusal, with_status, ZONES};
use crate::api::directory::UserPatch;
use crate::api::path_id;
use crate::password;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/profile", get(show).post(save_account))
        .route("/profile/password", post(change_password))
        .route("/profile/contact-methods", post(add_method))
        .route("/profile/contact-methods/{id}/send-code", post(send_code))
        .route("/profile/contact-methods/{id}/verify", post(verify))
        .route("/profile/contact-methods/{id}/test", post(send_test))
        .route("/profile/contact-methods/{id}/delete", post(delete_method))
        .route("/profile/notification-rules", post(save_rules))
        .route("/profile/handoff", post(save_handoff))
        .route("/profile/tokens", post(create_token))
        .route("/profile/tokens/{id}/revoke", post(revoke_token))
        .route("/profile/calendar-feed", post(rotate_feed))
}

/// What a finished action says on the page it comes back to (`?done=`).
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "account" => "Your profile is saved.",
        "password" => {
            "Your password is changed; every other browser signed in as you was signed out."
        }
        "method-added" => {
            "Contact method added. Send it a verification code: it is never used until verified."
        }
        "code-sent" => "A verification code is on its way; it works for 15 minutes.",
        "verified" => "Contact method verified.",
        "test-sent" => "A test notification is on its way.",
        "method-deleted" => "Contact method deleted.",
        "rules" => "Notification rules saved.",
        "handoff" => "Handoff notifications saved.",
        "token-revoked" => "Token revoked; it no longer works.",
        _ => return None,
    })
}

struct MethodRow {
    id: i64,
    kind: &'static str,
    address: String,
    label: String,
    verified: bool,
}

struct RuleRow {
    method_id: i64,
    delay: u32,
    urgency: &'static str,
}

struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    role: &'static str,
    created: String,
    last_used: String,
    revoked: Option<String>,
}

struct FeedRow {
    prefix: String,
    created: String,
    rotated: Option<String>,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    chrome: Chrome,
    name: String,
    email: String,
    time_zone: String,
    zones: &'static [&'static str],
    kinds: Vec<(&'static str, &'static str)>,
    methods: Vec<MethodRow>,
    rules: Vec<RuleRow>,
    /// Empty rule rows to add new rules in.
    blank_rules: Vec<usize>,
    reminder_minutes: String,
    notify_on_start: bool,
    tokens: Vec<TokenRow>,
    token_roles: Vec<&'static str>,
    feed: Option<FeedRow>,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
}

async fn show(State(state): State<AppState>, who: AsViewer, Query(q): Query<Done>) -> WebResult {
    profile_page(&state, &who, None, q.done.as_deref().and_then(notice)).await
}

async fn profile_page(
    state: &AppState,
    who: &AsViewer,
    error: Option<(StatusCode, String)>,
    notice: Option<&'static str>,
) -> WebResult {
    let me = state.store.user(who.user_id()).await?;
    let chrome = Chrome::new(&who.0, "profile", "Your profile");
    let methods = state.store.contact_methods(me.id).await?;
    let setup = state.store.notification_setup(me.id).await?;
    let handoff = state.store.handoff_settings(me.id).await?;
    let tokens = state.store.tokens(Some(me.id)).await?;
    let feed = state.store.calendar_feed(FeedOwner::User(me.id)).await?;
    let body = ProfilePage {
        name: me.name,
        email: me.email,
        time_zone: me.time_zone,
        zones: ZONES,
        kinds: ContactKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.default_label()))
            .collect(),
        methods: methods
            .iter()
            .map(|m| MethodRow {
                id: m.id,
                kind: m.kind.as_str(),
                address: m.address.clone(),
                label: m.label.clone(),
                verified: m.verified,
            })
            .collect(),
        blank_rules: (setup.rules.len()..setup.rules.len() + 2).collect(),
        rules: setup
            .rules
            .iter()
            .map(|r| RuleRow {
                method_id: r.contact_method_id,
                delay: r.delay_minutes,
                urgency: r.urgency.as_str(),
            })
            .collect(),
        reminder_minutes: handoff
            .reminder_minutes
            .map(|m| m.to_string())
            .unwrap_or_default(),
        notify_on_start: handoff.notify_on_start,
        tokens: tokens
            .iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name.clone(),
                prefix: t.prefix.clone(),
                role: t.role.as_str(),
                created: chrome.time(&t.created_at),
                last_used: chrome.time_opt(&t.last_used_at),
                revoked: t.revoked_at.as_ref().map(|r| chrome.time(r)),
            })
            .collect(),
        token_roles: Role::ALL
            .iter()
            .filter(|r| who.role().allows(**r))
            .map(|r| r.as_str())
            .collect(),
        feed: feed.map(|f| FeedRow {
            prefix: f.prefix.clone(),
            created: chrome.time(&f.created_at),
            rotated: f.rotated_at.as_ref().map(|r| chrome.time(r)),
        }),
        error: error.as_ref().map(|(_, m)| m.clone()),
        notice,
        chrome,
    };
    Ok(with_status(page(&body), &error))
}

/// After an action: back to the profile with its notice, or the profile again
/// with the refusal (status 4xx, the field named).
async fn answer(
    state: &AppState,
    who: &AsViewer,
    done: Result<(), WebError>,
    what: &str,
    anchor: &str,
) -> WebResult {
    match done {
        Ok(()) => Ok(see_other(format!("/profile?done={what}#{anchor}"))),
        Err(e) => {
            let err = refusal(e)?;
            profile_page(state, who, Some(err), None).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct AccountForm {
    name: Option<String>,
    email: Option<String>,
    time_zone: Option<String>,
}

/// Your name, email and time zone, as `PATCH /api/v1/me` changes them.
async fn save_account(
    State(state): State<AppState>,
    who: AsViewer,
    CsrfForm(f): CsrfForm<AccountForm>,
) -> WebResult {
    let done = async {
        let changes = UserPatch {
            name: Some(f.name.unwrap_or_default()),
            email: Some(f.email.unwrap_or_default()),
            time_zone: Some(checked_zone(f.time_zone.as_deref().unwrap_or(""))?),
            ..Default::default()
        }
        .into_changes()?;
        state
            .store
            .update_user(who.user_id(), &changes, &who.actor(), state.now())
            .await?;
        Ok(())
    }
    .await;
    answer(&state, &who, done, "account", "account").await
}

#[derive(Debug, Default, Deserialize)]
struct PasswordForm {
    current_password: Option<String>,
    new_password: Option<String>,
    new_password_again: Option<String>,
}

/// A new password, after the current one: every session of yours ends, and
/// this browser gets a new one, so whoever knew the old password is out.
async fn change_password(
    State(state): State<AppState>,
    who: AsViewer,
    headers: HeaderMap,
    CsrfForm(f): CsrfForm<PasswordForm>,
) -> WebResult {
    let done = async {
        let me = state.store.user(who.user_id()).await?;
        let stored = state
            .store
            .user_by_email(&me.email)
            .await?
            .and_then(|(_, h)| h)
            .unwrap_or_default();
        let current = f.current_password.unwrap_or_default();
        let ok = tokio::task::spawn_blocking(move || password::verify(&current, &stored))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(Invalid::new("current_password", "is not your current password").into());
        }
        let new = f.new_password.unwrap_or_default();
        if f.new_password_again.as_deref() != Some(new.as_str()) {
            return Err(
                Invalid::new("new_password_again", "does not match the new password").into(),
            );
        }
        let changes = UserPatch {
            password: Some(new),
            ..Default::default()
        }
        .into_changes()
        .map_err(|e| Invalid::new("new_password", e.message))?;
        state
            .store
            .update_user(me.id, &changes, &who.actor(), state.now())
            .await?;
        state.store.end_user_sessions(me.id).await?;
        Ok::<_, WebError>(state.store.create_session(me.id, state.now()).await?)
    }
    .await;
    match done {
        Ok(secret) => {
            let mut resp: Response = see_other("/profile?done=password#password");
            set_cookie(
                &mut resp,
                COOKIE_NAME,
                &secret,
                tocsin_store::SESSION_LIFETIME.num_seconds(),
                secure(&state, &headers),
            );
            Ok(resp)
        }
        Err(e) => answer(&state, &who, Err(e), "", "").await,
    }
}

#[derive(Debug, Default, Deserialize)]
struct MethodForm {
    kind: Option<String>,
    address: Option<String>,
    label: Option<String>,
}

/// A new, unverified contact method, as `POST /api/v1/users/{id}/contact-methods`.
async fn add_method(
    State(state): State<AppState>,
    who: AsViewer,
    CsrfForm(f): CsrfForm<MethodForm>,
) -> WebResult {
    let done = async {
        let kind = f
            .kind
            .as_deref()
            .and_then(ContactKind::parse)
            .ok_or_else(|| Invalid::new("kind", "choose one from the list"))?;
        let address = ContactAddress::parse(kind, "address", f.address.as_deref().unwrap_or(""))?;
        let label = contact_label("label", kind, f.label.as_deref())?;
        state
            .store
            .create_contact_method(
                who.user_id(),
                &address,
                &label,
                false,
                &who.actor(),
                state.now(),
            )
            .await?;
        Ok(())
    }
    .await;
    answer(&state, &who, done, "method-added", "contact-methods").await
}

async fn send_code(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
    _f: CsrfPairs,
) -> WebResult {
    let done = async {
        let id = path_id("method_id", &id)?;
        state
            .store
            .send_verification_code(who.user_id(), id, &who.actor(), state.now())
            .await?;
        Ok(())
    }
    .await;
    answer(&state, &who, done, "code-sent", "contact-methods").await
}

#[derive(Debug, Default, Deserialize)]
struct CodeForm {
    code: Option<String>,
}

async fn verify(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> WebResult {
    let done = async {
        let id = path_id("method_id", &id)?;
        let code = VerificationCode::parse("code", f.code.as_deref().unwrap_or(""))?;
        state
            .store
            .verify_contact_method(who.user_id(), id, &code, &who.actor(), state.now())
            .await?;
        Ok(())
    }
    .await;
    answer(&state, &who, done, "verified", "contact-methods").await
}

async fn send_test(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
    _f: CsrfPairs,
) -> WebResult {
    let done = async {
        let id = path_id("method_id", &id)?;
        state
            .store
            .send_test_notification(who.user_id(), id, &who.actor(), state.now())
            .await?;
        Ok(())
    }
    .await;
    answer(&state, &who, done, "test-sent", "contact-methods").await
}

async fn delete_method(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
    _f: CsrfPairs,
) -> WebResult {
    let done = async {
        let id = path_id("method_id", &id)?;
        state
            .store
            .delete_contact_method(who.user_id(), id, &who.actor(), state.now())
            .await?;
        Ok(())
    }
    .await;
    answer(&state, &who, done, "method-deleted", "contact-methods").await
}

/// The rules as the form's rows post them (`contact_method_id`, `delay_minutes`,
/// `urgency`, repeated in row order); a row without a contact method is left out.
fn rules_of(pairs: &[(String, String)]) -> Result<Vec<NotificationRule>, Invalid> {
    let methods = fields(pairs, "contact_method_id");
    let delays = fields(pairs, "delay_minutes");
    let urgencies = fields(pairs, "urgency");
    let mut rules = Vec::new();
    for (row, m) in methods.iter().enumerate() {
        if m.trim().is_empty() {
            continue;
        }
        let i = rules.len();
        let contact_method_id = m.trim().parse::<i64>().map_err(|_| {
            Invalid::new(
                format!("rules[{i}].contact_method_id"),
                "choose one of your contact methods",
            )
        })?;
        let delay = delays.get(row).map(|d| d.trim()).unwrap_or("");
        let delay_minutes = if delay.is_empty() {
            0
        } else {
            delay.parse::<u32>().map_err(|_| {
                Invalid::new(
                    format!("rules[{i}].delay_minutes"),
                    "must be a whole number of minutes",
                )
            })?
        };
        let urgency = match urgencies.get(row).copied() {
            Some("low") => Urgency::Low,
            Some("high") | None => Urgency::High,
            Some(_) => {
                return Err(Invalid::new(
                    format!("rules[{i}].urgency"),
                    "must be high or low",
                ))
            }
        };
        rules.push(NotificationRule {
            urgency,
            contact_method_id,
            delay_minutes,
        });
    }
    Ok(rules)
}

/// Replaces the rules, as `PUT /api/v1/users/{id}/notification-rules`;
/// working hours stay as they are.
async fn save_rules(
    State(state): State<AppState>,
    who: AsViewer,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult {
    let done = async {
        let rules = rules_of(&pairs)?;
        let setup = state.store.notification_setup(who.user_id()).await?;
        let hours = setup
            .working_hours
            .as_ref()
            .map(|h| h.parse("working_hours."))
            .transpose()?;
        state
            .store
            .set_notification_setup(
                who.user_id(),
                &rules,
                hours.as_ref(),
                &who.actor(),
                state.now(),
            )
            .await?;
        Ok(())
    }
    .await;
    answer(&state, &who, done, "rules", "rules").await
}

#[derive(Debug, Default, Deserialize)]
struct HandoffForm {
    reminder_minutes: Option<String>,
    notify_on_start: Option<String>,
}

/// Handoff notifications, as `PUT /api/v1/users/{id}/handoff-notifications`.
async fn save_handoff(
    State(state): State<AppState>,
    who: AsViewer,
    CsrfForm(f): CsrfForm<HandoffForm>,
) -> WebResult {
    let done = async {
        let reminder_minutes = f
            .reminder_minutes
            .as_deref()
            .map(|m| {
                m.trim().parse::<i64>().map_err(|_| {
                    Invalid::new(
                        "reminder_minutes",
                        "must be a whole number of minutes, or empty",
                    )
                })
            })
            .transpose()?;
        let settings = HandoffSettings {
            reminder_minutes,
            notify_on_start: f.notify_on_start.is_some(),
        };
        state
            .store
            .set_handoff_settings(who.user_id(), &settings, &who.actor(), state.now())
            .await?;
        Ok(())
    }
    .await;
    answer(&state, &who, done, "handoff", "handoff").await
}

/// The answer page that shows a new secret, the only time it can be read.
#[derive(Template)]
#[template(path = "profile_secret.html")]
struct SecretPage {
    chrome: Chrome,
    heading: &'static str,
    what: String,
    secret: String,
    how: &'static str,
}

#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    name: Option<String>,
    role: Option<String>,
}

/// A new API token of yours, as `POST /api/v1/tokens`; its secret is shown once.
async fn create_token(
    State(state): State<AppState>,
    who: AsViewer,
    CsrfForm(f): CsrfForm<TokenForm>,
) -> WebResult {
    let done = async {
        // A token never has more rights than the one who makes it.
        let role = match f.role.as_deref() {
            None => who.role(),
            Some(r) => match Role::parse(r) {
                Some(role) if who.role().allows(role) => role,
                _ => {
                    return Err(Invalid::new(
                        "role",
                        format!("cannot grant {r} as a {}", who.role()),
                    )
                    .into())
                }
            },
        };
        let name = required_text("name", f.name.as_deref().unwrap_or(""), 200)?;
        Ok::<_, WebError>(
            state
                .store
                .create_token(who.user_id(), &name, Some(role), &who.actor(), state.now())
                .await?,
        )
    }
    .await;
    match done {
        Ok(t) => Ok(page(&SecretPage {
            chrome: Chrome::new(&who.0, "profile", "New API token"),
            heading: "Your new API token",
            what: format!("{} ({})", t.record.name, t.record.role),
            secret: t.secret,
            how: "Send it as `Authorization: Bearer <token>` to /api/v1. Copy it now: it is shown only this once.",
        })),
        Err(e) => answer(&state, &who, Err(e), "", "").await,
    }
}

/// Revokes a token of yours (the API lets admins revoke anyone's; this page is yours).
async fn revoke_token(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
    _f: CsrfPairs,
) -> WebResult {
    let done = async {
        let id = path_id("id", &id)?;
        let t = state.store.token(id).await?;
        if t.user_id != who.user_id() {
            return Err(crate::error::ApiError::NotFound(format!("token {id}")).into());
        }
        state
            .store
            .revoke_token(id, &who.actor(), state.now())
            .await?;
        Ok(())
    }
    .await;
    answer(&state, &who, done, "token-revoked", "tokens").await
}

/// Creates your calendar feed or rotates its URL, as `POST /api/v1/me/calendar-feed`;
/// the URL is shown once.
async fn rotate_feed(
    State(state): State<AppState>,
    who: AsViewer,
    headers: HeaderMap,
    _f: CsrfPairs,
) -> WebResult {
    let (_, token) = state
        .store
        .rotate_calendar_feed(FeedOwner::User(who.user_id()), &who.actor(), state.now())
        .await?;
    let url = format!(
        "{}/calendar/{token}.ics",
        crate::api::snippets::base_url(&state, &headers)
    );
    Ok(page(&SecretPage {
        chrome: Chrome::new(&who.0, "profile", "Your calendar feed"),
        heading: "Your calendar feed",
        what: "Your on-call shifts across all schedules".into(),
        secret: url,
        how: "Subscribe to this URL in your calendar app. Copy it now: it is shown only this once, and any earlier URL of this feed has stopped working.",
    }))
}
