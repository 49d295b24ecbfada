//! API integration tests over real HTTP, each run on SQLite and on PostgreSQL.

mod support;

mod lifecycle;
mod openapi;
mod roles;
mod bad_input;
mod records;
