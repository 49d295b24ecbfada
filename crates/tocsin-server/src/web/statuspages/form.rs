//! What the status-page forms share: status badges (a colour, a shape and a
//! word), select options, refusals shown on the form, the values a refused
//! form posted, and what an edit form showed (`orig`) so that saving it
//! changes only what the person changed.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use tocsin_core::status_page::{ComponentStatus, Indicator, PostKind, PostStatus};

use crate::api::status_posts::ComponentStatusRequest;
use crate::web::session::field;
use crate::web::WebError;
use crate::ApiError;

/// A choice in a select, or a checkbox.
pub(crate) struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Opt {
    pub fn new(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Opt {
        Opt {
            value: value.into(),
            label: label.into(),
            selected,
        }
    }
}

/// A status as a badge: its class gives the colour and the shape, `label` the word.
pub(crate) struct Badge {
    pub class: String,
    pub label: &'static str,
}

impl Badge {
    /// A component's status.
    pub fn component(s: ComponentStatus) -> Badge {
        Badge {
            class: format!("cs cs-{}", s.as_str()),
            label: s.label(),
        }
    }

    /// A page's overall status, drawn like the component status it stands for.
    pub fn indicator(i: Indicator) -> Badge {
        let like = match i {
            Indicator::None => ComponentStatus::Operational,
            Indicator::Maintenance => ComponentStatus::UnderMaintenance,
            Indicator::Minor => ComponentStatus::DegradedPerformance,
            Indicator::Major => ComponentStatus::PartialOutage,
            Indicator::Critical => ComponentStatus::MajorOutage,
        };
        Badge {
            class: format!("cs cs-{}", like.as_str()),
            label: i.description(),
        }
    }

    /// A post's status: open ones stand out, closed ones do not.
    pub fn post(s: PostStatus) -> Badge {
        Badge {
            class: format!(
                "status ps-{}{}",
                s.as_str(),
                if s.is_closed() { " ps-closed" } else { "" }
            ),
            label: s.label(),
        }
    }
}

/// Every component status as options, `selected` chosen; `blank` first when given.
pub(crate) fn component_status_opts(selected: &str, blank: Option<&str>) -> Vec<Opt> {
    blank
        .map(|b| Opt::new("", b, selected.is_empty()))
        .into_iter()
        .chain(
            ComponentStatus::ALL
                .iter()
                .map(|s| Opt::new(s.as_str(), s.label(), s.as_str() == selected)),
        )
        .collect()
}

/// The statuses a post of `kind` may take, `selected` chosen.
pub(crate) fn post_status_opts(kind: PostKind, selected: &str) -> Vec<Opt> {
    PostStatus::allowed(kind)
        .iter()
        .map(|s| Opt::new(s.as_str(), s.label(), s.as_str() == selected))
        .collect()
}

/// An incident's impact choices; blank means "from the components".
pub(crate) fn impact_opts(selected: &str, blank: &str) -> Vec<Opt> {
    std::iter::once(Opt::new("", blank, selected.is_empty()))
        .chain(
            ["none", "minor", "major", "critical"]
                .iter()
                .map(|i| Opt::new(*i, *i, *i == selected)),
        )
        .collect()
}

/// A form the page can show again with its message; other errors (a missing
/// page, a role too low, a failure) stay error pages.
pub(crate) struct Refused {
    pub status: StatusCode,
    pub message: String,
}

/// A form that was refused: which one (`settings`, `component-5`,
/// `publish`, …), why, and what it posted, to show it again filled in.
pub(crate) struct Failed {
    pub form: String,
    pub refused: Refused,
    pub pairs: Vec<(String, String)>,
}

impl Failed {
    /// The values form `form` posted, if it is the one refused.
    pub fn fill<'a>(failed: &'a Option<Failed>, form: &str) -> Fill<'a> {
        Fill(
            failed
                .as_ref()
                .filter(|f| f.form == form)
                .map(|f| f.pairs.as_slice()),
        )
    }

    /// Its message, if `form` is the one refused.
    pub fn error(failed: &Option<Failed>, form: &str) -> Option<String> {
        failed
            .as_ref()
            .filter(|f| f.form == form)
            .map(|f| f.refused.message.clone())
    }
}

/// `e` as a refusal of the form's input, naming the field as the API does.
pub(crate) fn refused(e: impl Into<WebError>) -> Result<Refused, WebError> {
    let e = match e.into() {
        WebError::Api(e) => e,
        other => return Err(other),
    };
    let (status, _, field) = e.parts();
    if !status.is_client_error() || matches!(status.as_u16(), 401 | 403 | 404) {
        return Err(e.into());
    }
    // The field leads, so the person knows where to look even when the
    // message mentions other things.
    let text = e.to_string();
    let message = match field {
        Some(f) if !text.starts_with(&f) => format!("{f}: {text}"),
        _ => text,
    };
    // Input the API would answer 400 is a form to correct: 422, as the
    // other pages answer a refused form.
    let status = if status == StatusCode::BAD_REQUEST {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        status
    };
    Ok(Refused { status, message })
}

/// A refused field, as the API would name it.
pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The hidden field carrying what an edit form showed, as JSON of the
/// record's fields under the API's names.
pub(crate) const ORIG: &str = "orig";

/// `keys` of `record` as the JSON an edit form's `orig` carries.
pub(crate) fn orig_of<T: Serialize>(record: &T, keys: &[&str]) -> String {
    let all = serde_json::to_value(record).unwrap_or_default();
    let picked: Map<String, Value> = keys
        .iter()
        .map(|k| ((*k).to_string(), all[*k].clone()))
        .collect();
    Value::Object(picked).to_string()
}

/// What the posting form showed: the record as it is now with the form's
/// `orig` values in place. Each save compares the posted values with it and
/// sends only what differs, so a form drawn before someone else's change
/// never reverts it. A post without `orig` (made by hand) is compared with
/// the record as it is.
pub(crate) struct Shown {
    values: Map<String, Value>,
    /// Whether the form said what it showed: then an unticked checkbox
    /// (which posts nothing) means "off", not "not in this form".
    pub from_form: bool,
}

impl Shown {
    pub fn of<T: Serialize>(pairs: &[(String, String)], current: &T) -> Result<Shown, ApiError> {
        let mut values = match serde_json::to_value(current) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let Some(orig) = field(pairs, ORIG) else {
            return Ok(Shown {
                values,
                from_form: false,
            });
        };
        let orig: Map<String, Value> = serde_json::from_str(orig)
            .map_err(|_| invalid(ORIG, "the form is damaged; reload the page and try again"))?;
        values.extend(orig);
        Ok(Shown {
            values,
            from_form: true,
        })
    }

    /// Whether `new` differs from what the form showed as `key`.
    pub fn differs<V: Serialize>(&self, key: &str, new: &V) -> bool {
        let new = serde_json::to_value(new).unwrap_or(Value::Null);
        self.values.get(key).unwrap_or(&Value::Null) != &new
    }

    /// The text the form showed as `key` (empty for none).
    pub fn text(&self, key: &str) -> &str {
        self.values.get(key).and_then(Value::as_str).unwrap_or("")
    }

    /// A checkbox's posted state: ticked, unticked (when the form said what it
    /// showed), or not in this post.
    pub fn checkbox(&self, pairs: &[(String, String)], key: &str) -> Option<bool> {
        match field(pairs, key) {
            Some(_) => Some(true),
            None if self.from_form => Some(false),
            None => None,
        }
    }
}

/// A posted text as the page showed it (browsers post CRLF line ends).
pub(crate) fn posted(pairs: &[(String, String)], key: &str) -> Option<String> {
    field(pairs, key).map(|v| v.replace("\r\n", "\n"))
}

/// An id chosen from a list.
pub(crate) fn chosen_id(field: &str, v: &str) -> Result<i64, ApiError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(field, "choose one from the list"))
}

/// A whole number typed in a field; blank is none.
pub(crate) fn whole_number(field: &str, v: &str) -> Result<Option<i64>, ApiError> {
    match v.trim() {
        "" => Ok(None),
        t => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| invalid(field, format!("`{t}` is not a whole number"))),
    }
}

/// The key prefix of a component's status select: `component.<id>`.
pub(crate) const COMPONENT: &str = "component.";

/// The components a form gave a status, as the API's list, in the order
/// posted; a select left at its blank choice names nothing.
pub(crate) fn component_statuses(
    pairs: &[(String, String)],
) -> Result<Vec<ComponentStatusRequest>, ApiError> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        let Some(id) = k.strip_prefix(COMPONENT) else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        let i = out.len();
        let component_id = chosen_id(&format!("components[{i}].component_id"), id)?;
        let status = ComponentStatus::parse(&format!("components[{i}].status"), v)?;
        out.push(ComponentStatusRequest {
            component_id,
            status: Some(status),
        });
    }
    Ok(out)
}

/// The values a refused form posted, to show them again; none when the form
/// is drawn fresh (then each input shows the record).
#[derive(Clone, Copy)]
pub(crate) struct Fill<'a>(pub Option<&'a [(String, String)]>);

impl Fill<'_> {
    /// The text of `key`: as posted, else `current`.
    pub fn text(&self, key: &str, current: &str) -> String {
        match self.0 {
            Some(p) => posted(p, key).unwrap_or_default(),
            None => current.to_string(),
        }
    }

    /// Whether checkbox `key` is ticked: as posted, else `current`.
    pub fn checked(&self, key: &str, current: bool) -> bool {
        match self.0 {
            Some(p) => field(p, key).is_some(),
            None => current,
        }
    }

    /// Every value of `key`: as posted, else `current`.
    pub fn values(&self, key: &str, current: Vec<String>) -> Vec<String> {
        match self.0 {
            Some(p) => crate::web::session::fields(p, key)
                .into_iter()
                .map(str::to_string)
                .collect(),
            None => current,
        }
    }

    /// The `orig` to carry on: what the form first showed, not the record now.
    pub fn orig(&self, current: String) -> String {
        match self.0.and_then(|p| field(p, ORIG)) {
            Some(o) => o.to_string(),
            None => current,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shown_prefers_the_forms_orig_and_compares_typed_values() {
        let current = serde_json::json!({ "name": "API v2", "group_id": 3, "show_uptime": true });
        let p = pairs(&[(ORIG, r#"{"name":"API","group_id":null}"#)]);
        let shown = Shown::of(&p, &current).unwrap();
        assert!(shown.from_form);
        assert!(!shown.differs("name", &"API"), "as the form showed it");
        assert!(shown.differs("name", &"API v2"));
        assert!(!shown.differs("group_id", &Option::<i64>::None));
        assert!(!shown.differs("show_uptime", &true), "not in orig: current");
        assert_eq!(shown.checkbox(&p, "show_uptime"), Some(false));

        let bare = Shown::of(&[], &current).unwrap();
        assert!(!bare.from_form);
        assert!(!bare.differs("name", &"API v2"));
        assert_eq!(bare.checkbox(&[], "show_uptime"), None);

        let damaged = Shown::of(&pairs(&[(ORIG, "{")]), &current);
        assert!(matches!(damaged, Err(ApiError::Invalid { field, .. }) if field == ORIG));
    }

    #[test]
    fn component_statuses_skip_blank_selects_and_name_bad_ones() {
        let p = pairs(&[
            ("component.4", "major_outage"),
            ("component.5", ""),
            ("name", "x"),
            ("component.6", "partial_outage"),
        ]);
        let got = component_statuses(&p).unwrap();
        assert_eq!(
            got.iter()
                .map(|c| (c.component_id, c.status))
                .collect::<Vec<_>>(),
            vec![
                (4, Some(ComponentStatus::MajorOutage)),
                (6, Some(ComponentStatus::PartialOutage))
            ]
        );
        match component_statuses(&pairs(&[("component.4", "on_fire")])) {
            Err(ApiError::Invalid { field, .. }) => assert_eq!(field, "components[0].status"),
            other => panic!("{other:?}"),
        }
        match component_statuses(&pairs(&[("component.x", "operational")])) {
            Err(ApiError::Invalid { field, .. }) => {
                assert_eq!(field, "components[0].component_id")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals_keep_missing_things_and_roles_as_error_pages() {
        let r = refused(invalid("name", "must not be empty")).ok().unwrap();
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.message, "name: must not be empty");
        assert!(refused(ApiError::NotFound("status page 9".into())).is_err());
        assert!(refused(ApiError::Internal("db".into())).is_err());
        let c = refused(ApiError::Conflict {
            code: "conflict",
            message: "this slug is already used".into(),
            field: Some("slug".into()),
        })
        .ok()
        .unwrap();
        assert_eq!(c.status, StatusCode::CONFLICT);
        assert_eq!(c.message, "slug: this slug is already used");
    }
}
