//! API integration tests over real HTTP, each run on SQLite and on PostgreSQL.

mod support;

mod lifecycle;
