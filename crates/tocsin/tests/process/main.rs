//! Tests that run the real `tocsin` binary as a process: durability across
//! kill -9, graceful shutdown, the CLI, and PostgreSQL.

mod cli;
mod compat;
mod delivery;
mod durability;
mod paging;
mod postgres;
mod server;
