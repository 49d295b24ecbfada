//! API integration tests over real HTTP, each run on SQLite and on PostgreSQL.

// Test tables are tuples written inline; naming each shape would hide the table.
#![allow(clippy::type_complexity)]

mod support;

// The notify crate's ESMTP receiver: a real SMTP exchange for subscriber mail.
#[path = "../../../tocsin-notify/tests/smtp_receiver/mod.rs"]
#[allow(dead_code)]
mod smtp_receiver;

mod action_links;
mod bad_input;
mod browser;
mod browser_status;
mod browser_workflows;
mod calendar;
mod concurrency;
mod contact_methods;
mod delivery;
mod email;
mod engine_review;
mod escalation_engine;
mod escalation_policies;
mod grouping;
mod handoffs;
mod heartbeats;
mod ingest;
mod integrations;
mod learning_analytics;
mod learning_postmortems;
mod learning_similar;
mod lifecycle;
mod openapi;
mod ops;
mod paging;
mod records;
mod roles;
mod schedules;
mod status_api;
mod status_export;
mod status_flow;
mod status_mail;
mod status_public;
mod status_races;
mod suppression;
mod swaps;
mod twilio_replies;
mod users_deactivate;
mod verification;
mod web;
mod web_alerts;
mod web_analytics;
mod web_oncall;
mod web_people;
mod web_postmortems;
mod web_room;
mod web_services;
mod web_status;
mod web_support;
mod web_workflows;
mod webdriver;
mod workflows;
