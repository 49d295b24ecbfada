//! The page's history as Atom and RSS 2.0 feeds, from a snapshot.
