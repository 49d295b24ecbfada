//! Which function renders each Statuspage-compatible JSON document and each
//! feed: the one place the routes, the cache and the static export ask.
//!
//! LEAD (merge): `super::json` and `super::feed` are written in parallel. Until
//! they are merged every entry points at a placeholder below. When merging,
//! point each arm of [`JsonDoc::render`] at `super::json::<name>` (signature
//! `fn(&PublicStatus) -> Vec<u8>`), [`atom`] and [`rss`] at `super::feed::atom`
//! and `super::feed::rss` (`fn(&PublicStatus) -> String`), and delete the
//! `placeholder` module. Nothing else needs to change.

use tocsin_core::status_page::public::PublicStatus;

/// One document of the Statuspage public API (v2), under `api/v2/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum JsonDoc {
    Summary,
    Status,
    Components,
    Incidents,
    UnresolvedIncidents,
    Maintenances,
    UpcomingMaintenances,
    ActiveMaintenances,
}

impl JsonDoc {
    /// Every document, in the order the docs list them.
    pub const ALL: [JsonDoc; 8] = [
        JsonDoc::Summary,
        JsonDoc::Status,
        JsonDoc::Components,
        JsonDoc::Incidents,
        JsonDoc::UnresolvedIncidents,
        JsonDoc::Maintenances,
        JsonDoc::UpcomingMaintenances,
        JsonDoc::ActiveMaintenances,
    ];

    /// Its path under `api/v2/`, the same on the server and in an export.
    pub fn file(self) -> &'static str {
        match self {
            JsonDoc::Summary => "summary.json",
            JsonDoc::Status => "status.json",
            JsonDoc::Components => "components.json",
            JsonDoc::Incidents => "incidents.json",
            JsonDoc::UnresolvedIncidents => "incidents/unresolved.json",
            JsonDoc::Maintenances => "scheduled-maintenances.json",
            JsonDoc::UpcomingMaintenances => "scheduled-maintenances/upcoming.json",
            JsonDoc::ActiveMaintenances => "scheduled-maintenances/active.json",
        }
    }

    /// The document's bytes for a snapshot.
    pub fn render(self, s: &PublicStatus) -> Vec<u8> {
        let f: fn(&PublicStatus) -> Vec<u8> = match self {
            JsonDoc::Summary => placeholder::summary,
            JsonDoc::Status => placeholder::status,
            JsonDoc::Components => placeholder::components,
            JsonDoc::Incidents => placeholder::incidents,
            JsonDoc::UnresolvedIncidents => placeholder::unresolved,
            JsonDoc::Maintenances => placeholder::scheduled_maintenances,
            JsonDoc::UpcomingMaintenances => placeholder::upcoming,
            JsonDoc::ActiveMaintenances => placeholder::active,
        };
        f(s)
    }
}

/// The page's history as an Atom feed.
pub(crate) fn atom(s: &PublicStatus) -> String {
    placeholder::atom(s)
}

/// The page's history as an RSS 2.0 feed.
pub(crate) fn rss(s: &PublicStatus) -> String {
    placeholder::rss(s)
}

/// LEAD (merge): stand-ins until `json.rs` and `feed.rs` land; delete this
/// module then. They carry no page data, so they cannot leak or mis-escape any.
mod placeholder {
    use tocsin_core::status_page::public::PublicStatus;

    const TODO: &[u8] = br#"{"todo": true}"#;

    pub fn summary(_: &PublicStatus) -> Vec<u8> {
        TODO.to_vec()
    }
    pub fn status(_: &PublicStatus) -> Vec<u8> {
        TODO.to_vec()
    }
    pub fn components(_: &PublicStatus) -> Vec<u8> {
        TODO.to_vec()
    }
    pub fn incidents(_: &PublicStatus) -> Vec<u8> {
        TODO.to_vec()
    }
    pub fn unresolved(_: &PublicStatus) -> Vec<u8> {
        TODO.to_vec()
    }
    pub fn scheduled_maintenances(_: &PublicStatus) -> Vec<u8> {
        TODO.to_vec()
    }
    pub fn upcoming(_: &PublicStatus) -> Vec<u8> {
        TODO.to_vec()
    }
    pub fn active(_: &PublicStatus) -> Vec<u8> {
        TODO.to_vec()
    }
    pub fn atom(_: &PublicStatus) -> String {
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\"><title>todo</title></feed>\n"
            .into()
    }
    pub fn rss(_: &PublicStatus) -> String {
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <rss version=\"2.0\"><channel><title>todo</title></channel></rss>\n"
            .into()
    }
}
