//! The Atlassian Statuspage public API (v2) shapes, from a snapshot.
