//! `jitsi_link`: a Jitsi Meet room link. Jitsi has no API to call: a room
//! exists once someone opens its link.

use serde_json::{json, Value};
use tocsin_core::workflow::action::jitsi_url;
use tocsin_core::workflow::Action;
use tocsin_notify::BoxFuture;

use super::{link, note_on_incident};
use crate::workflow::executor::{StepCall, StepError, StepExecutor};

/// The public Jitsi Meet service.
pub const PUBLIC_JITSI: &str = "https://meet.jit.si";

/// `[workflows.jitsi]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitsiConfig {
    /// Where rooms are, e.g. `https://meet.jit.si` or a self-hosted server.
    pub base_url: String,
}

impl Default for JitsiConfig {
    fn default() -> Self {
        JitsiConfig {
            base_url: PUBLIC_JITSI.into(),
        }
    }
}

/// Makes Jitsi room links.
pub struct JitsiLinkStep {
    config: JitsiConfig,
}

impl JitsiLinkStep {
    /// Rooms on `config.base_url`.
    pub fn new(config: JitsiConfig) -> JitsiLinkStep {
        JitsiLinkStep { config }
    }
}

impl StepExecutor for JitsiLinkStep {
    fn kinds(&self) -> &'static [&'static str] {
        &["jitsi_link"]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::JitsiLink(j) = call.action else {
                return Err(StepError::permanent("not a jitsi_link step"));
            };
            let room = match j.room.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
                Some(r) => r.to_string(),
                None => {
                    let number = call.context["incident"]["number"]
                        .as_str()
                        .ok_or_else(|| {
                            StepError::permanent(
                                "jitsi_link.room: the run has no incident to name the room after; give a room",
                            )
                        })?;
                    format!("tocsin-{}", number.to_lowercase())
                }
            };
            let url = jitsi_url(&self.config.base_url, &room);
            let room = url.rsplit('/').next().unwrap_or_default().to_string();
            let noted =
                j.post_link && note_on_incident(call, &format!("Meeting link: {url}")).await;
            Ok(json!({
                "url": url,
                "room": room,
                "noted": noted,
                "link": link("jitsi_meeting", &room, &url),
            }))
        })
    }
}
