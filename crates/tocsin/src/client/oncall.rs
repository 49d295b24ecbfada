//! `tocsin oncall …`: who is on call now (or at `--at`) for every schedule, one
//! schedule, an escalation policy or a service; a schedule's shifts over a range;
//! and the caller's own upcoming shifts. Schedules, policies and services are
//! named by id or by name.

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use chrono_tz::Tz;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::http::Api;
use super::output;

/// Longest range the server gives shifts for.
const MAX_DAYS: i64 = 93;

/// Who is on call now or at `--at`: for one target, or every schedule.
#[derive(Debug, Args)]
pub struct NowArgs {
    /// A schedule, by id or name.
    #[arg(long, conflicts_with_all = ["policy", "service"])]
    schedule: Option<String>,
    /// An escalation policy, by id or name: who each level would page.
    #[arg(long, conflicts_with = "service")]
    policy: Option<String>,
    /// A service, by id or name: who its escalation policy would page.
    #[arg(long)]
    service: Option<String>,
    /// The instant to ask about, RFC 3339 (default now).
    #[arg(long, value_parser = instant)]
    at: Option<DateTime<Utc>>,
}

/// On-call subcommands.
#[derive(Debug, Subcommand)]
pub enum OncallCmd {
    /// A schedule's final shifts over a range (default the next 7 days).
    Shifts {
        /// The schedule, by id or name.
        #[arg(long)]
        schedule: String,
        /// Start, RFC 3339 (default now).
        #[arg(long, value_parser = instant)]
        from: Option<DateTime<Utc>>,
        /// End, RFC 3339 (default 7 days after the start; at most 93).
        #[arg(long, value_parser = instant)]
        to: Option<DateTime<Utc>>,
    },
    /// Your own shifts across every schedule, from now.
    Mine {
        /// How many days ahead (1–93).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(i64).range(1..=MAX_DAYS))]
        days: i64,
    },
}

fn instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{s}` is not an RFC 3339 time such as 2026-03-09T15:00:00Z"))
}

/// An instant as a query parameter value (UTC, so no `+` to escape).
fn param(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn zone(name: &Value) -> Tz {
    name.as_str()
        .and_then(|z| z.parse().ok())
        .unwrap_or(Tz::UTC)
}

/// An API time shown in `tz`, with the zone's abbreviation.
fn local(t: &Value, tz: Tz) -> String {
    match t.as_str().map(DateTime::parse_from_rfc3339) {
        Some(Ok(t)) => t
            .with_timezone(&tz)
            .format("%a %Y-%m-%d %H:%M %Z")
            .to_string(),
        _ => output::cell(t),
    }
}

/// Runs an on-call command.
pub async fn run(api: &Api, now: NowArgs, cmd: Option<OncallCmd>) -> anyhow::Result<()> {
    let targeted = now.schedule.is_some() || now.policy.is_some() || now.service.is_some();
    match cmd {
        Some(_) if targeted || now.at.is_some() => bail!(
            "--schedule, --policy, --service and --at before a subcommand belong to `tocsin oncall` alone; write `tocsin oncall shifts --schedule NAME`"
        ),
        Some(OncallCmd::Shifts { schedule, from, to }) => shifts(api, &schedule, from, to).await,
        Some(OncallCmd::Mine { days }) => mine(api, days).await,
        None => {
            if let Some(s) = &now.schedule {
                let s = resolve(api, "schedule", s).await?;
                return schedules_now(api, &[s], now.at, true).await;
            }
            if let Some(p) = &now.policy {
                let p = resolve(api, "policy", p).await?;
                let v = api
                    .get(&with_at(
                        &format!("/api/v1/escalation-policies/{}/on-call", p["id"]),
                        now.at,
                    ))
                    .await?;
                return policy_now(api, &v, None).await;
            }
            if let Some(s) = &now.service {
                let s = resolve(api, "service", s).await?;
                let v = api
                    .get(&with_at(
                        &format!("/api/v1/services/{}/on-call", s["id"]),
                        now.at,
                    ))
                    .await?;
                if api.json {
                    output::json(&v);
                    return Ok(());
                }
                let name = output::cell(&s["name"]);
                if v["escalation_policy"].is_null() {
                    println!("Service {name} has no escalation policy: nobody is paged for it.");
                    return Ok(());
                }
                return policy_now(api, &v["escalation_policy"], Some(&name)).await;
            }
            let all = api.get("/api/v1/schedules").await?;
            let all = all.as_array().map(Vec::as_slice).unwrap_or(&[]);
            schedules_now(api, all, now.at, false).await
        }
    }
}

fn with_at(path: &str, at: Option<DateTime<Utc>>) -> String {
    match at {
        Some(t) => format!("{path}?at={}", param(t)),
        None => path.to_string(),
    }
}

/// Finds a schedule, policy or service by id, else by its name (exact, ignoring
/// case); none or several is an error naming the flag.
async fn resolve(api: &Api, flag: &str, given: &str) -> anyhow::Result<Value> {
    let (path, what) = match flag {
        "schedule" => ("/api/v1/schedules", "schedule"),
        "policy" => ("/api/v1/escalation-policies", "escalation policy"),
        _ => ("/api/v1/services", "service"),
    };
    let list = api.get(path).await?;
    let items = list.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let given = given.trim();
    if let Ok(id) = given.parse::<i64>() {
        if let Some(i) = items.iter().find(|i| i["id"].as_i64() == Some(id)) {
            return Ok(i.clone());
        }
    }
    let found: Vec<&Value> = items
        .iter()
        .filter(|i| {
            i["name"]
                .as_str()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(given))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let known: Vec<String> = items
                .iter()
                .map(|i| format!("`{}`", output::cell(&i["name"])))
                .collect();
            let known = match known.len() {
                0 => format!("there is no {what} yet"),
                n if n <= 10 => format!("there are {}", known.join(", ")),
                n => format!("there are {n}, e.g. {}", known[..10].join(", ")),
            };
            bail!("--{flag}: no {what} has the id or name `{given}` ({known})")
        }
        many => bail!(
            "--{flag}: `{given}` is the name of {} {what}s ({}); give the id",
            many.len(),
            many.iter()
                .map(|i| format!("{} `{}`", i["id"], output::cell(&i["name"])))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Who is on call on each schedule: schedule, user, until (in its zone), and why.
async fn schedules_now(
    api: &Api,
    schedules: &[Value],
    at: Option<DateTime<Utc>>,
    single: bool,
) -> anyhow::Result<()> {
    let mut answers = Vec::new();
    for s in schedules {
        let v = api
            .get(&with_at(
                &format!("/api/v1/schedules/{}/on-call", s["id"]),
                at,
            ))
            .await?;
        answers.push((s, v));
    }
    if api.json {
        let mut raw: Vec<Value> = answers.into_iter().map(|(_, v)| v).collect();
        match raw.pop() {
            Some(one) if single => output::json(&one),
            last => {
                raw.extend(last);
                output::json(&Value::Array(raw))
            }
        }
        return Ok(());
    }
    if answers.is_empty() {
        println!("No schedules yet.");
        return Ok(());
    }
    let rows = answers
        .iter()
        .map(|(s, v)| {
            let tz = zone(&s["time_zone"]);
            let shift = &v["shift"];
            if shift.is_null() {
                return vec![
                    output::cell(&s["name"]),
                    "nobody".into(),
                    "-".into(),
                    "-".into(),
                ];
            }
            let via = if v["override_id"].is_null() {
                format!("layer {}", output::cell(&shift["layer_name"]))
            } else {
                format!("override {}", v["override_id"])
            };
            vec![
                output::cell(&s["name"]),
                output::cell(&shift["user_name"]),
                local(&shift["ends_at"], tz),
                via,
            ]
        })
        .collect();
    if let Some(at) = at {
        println!("On call at {} UTC:", at.format("%Y-%m-%d %H:%M"));
    }
    output::table(&["SCHEDULE", "ON CALL", "UNTIL", "VIA"], rows);
    Ok(())
}

/// Who each level of a policy would page, target by target.
async fn policy_now(api: &Api, v: &Value, service: Option<&str>) -> anyhow::Result<()> {
    if api.json {
        output::json(v);
        return Ok(());
    }
    let policy = api
        .get(&format!(
            "/api/v1/escalation-policies/{}",
            v["escalation_policy_id"]
        ))
        .await?;
    let names = TargetNames::load(api, &policy).await?;
    let title = format!(
        "escalation policy {} ({})",
        output::cell(&v["escalation_policy_name"]),
        v["escalation_policy_id"]
    );
    let at = local(&v["at"], Tz::UTC);
    match service {
        Some(s) => println!("Service {s} uses {title}; at {at} it pages:"),
        None => println!("At {at}, {title} pages:"),
    }
    let mut rows = Vec::new();
    for (i, level) in v["levels"].as_array().into_iter().flatten().enumerate() {
        let targets = policy["levels"][i]["targets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let users = level["users"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let empty = level["empty_targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (j, target) in targets.iter().enumerate() {
            let reached: Vec<String> = users
                .iter()
                .filter(|u| u["target_index"].as_u64() == Some(j as u64))
                .map(|u| output::cell(&u["user_name"]))
                .collect();
            let who = if !reached.is_empty() {
                reached.join(", ")
            } else if empty.contains(target) {
                "nobody".into()
            } else {
                "(paged by a target above)".into()
            };
            let (first, delay) = if j == 0 {
                (
                    (i + 1).to_string(),
                    format!("{} min", output::cell(&level["delay_minutes"])),
                )
            } else {
                (String::new(), String::new())
            };
            rows.push(vec![first, delay, names.describe(target), who]);
        }
    }
    output::table(&["LEVEL", "THEN WAIT", "TARGET", "PAGES"], rows);
    Ok(())
}

/// Names of the schedules, teams and policies a policy's targets point at.
struct TargetNames {
    users: Value,
    schedules: Value,
    teams: Value,
    policies: Value,
}

impl TargetNames {
    async fn load(api: &Api, policy: &Value) -> anyhow::Result<TargetNames> {
        let text = policy["levels"].to_string();
        let fetch = |kind: &str, path: &'static str| {
            let wanted = text.contains(&format!("\"{kind}\""));
            async move {
                if wanted {
                    api.get(path).await
                } else {
                    Ok(Value::Null)
                }
            }
        };
        Ok(TargetNames {
            users: fetch("user", "/api/v1/users").await?,
            schedules: fetch("schedule", "/api/v1/schedules").await?,
            teams: fetch("team", "/api/v1/teams").await?,
            policies: fetch("policy", "/api/v1/escalation-policies").await?,
        })
    }

    fn describe(&self, target: &Value) -> String {
        let name = |list: &Value, id: &Value| {
            list.as_array()
                .into_iter()
                .flatten()
                .find(|i| i["id"] == *id)
                .map(|i| output::cell(&i["name"]))
                .unwrap_or_else(|| format!("{id} (deleted)"))
        };
        if let Some(id) = target.get("user") {
            format!("user {}", name(&self.users, id))
        } else if let Some(id) = target.get("schedule") {
            format!("schedule {}", name(&self.schedules, id))
        } else if let Some(id) = target.get("team") {
            format!("team {}", name(&self.teams, id))
        } else if let Some(id) = target.get("policy") {
            format!("hand-off to {}", name(&self.policies, id))
        } else {
            target.to_string()
        }
    }
}

/// A schedule's final shifts, in its zone.
async fn shifts(
    api: &Api,
    schedule: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let s = resolve(api, "schedule", schedule).await?;
    let mut query = Vec::new();
    if let Some(f) = from {
        query.push(format!("from={}", param(f)));
    }
    if let Some(t) = to {
        query.push(format!("to={}", param(t)));
    }
    let mut path = format!("/api/v1/schedules/{}/shifts", s["id"]);
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let v = api.get(&path).await?;
    if api.json {
        output::json(&v);
        return Ok(());
    }
    let tz = zone(&s["time_zone"]);
    let list = v.as_array().map(Vec::as_slice).unwrap_or(&[]);
    println!(
        "Shifts of {}, times in {}:",
        output::cell(&s["name"]),
        tz.name()
    );
    if list.is_empty() {
        println!("nobody is on call in this range.");
        return Ok(());
    }
    print_shifts(list, tz, false);
    Ok(())
}

fn print_shifts(list: &[Value], tz: Tz, with_schedule: bool) {
    let rows = list
        .iter()
        .map(|x| {
            let via = match x["layer_name"].as_str() {
                Some(l) => format!("layer {l}"),
                None => "override".into(),
            };
            let mut row = vec![
                output::cell(&x["user_name"]),
                local(&x["starts_at"], tz),
                local(&x["ends_at"], tz),
                via,
            ];
            if with_schedule {
                row[0] = output::cell(&x["schedule_name"]);
            }
            row
        })
        .collect();
    let first = if with_schedule { "SCHEDULE" } else { "USER" };
    output::table(&[first, "FROM", "UNTIL", "VIA"], rows);
}

/// The caller's shifts across every schedule for the next `days`, in their zone.
async fn mine(api: &Api, days: i64) -> anyhow::Result<()> {
    let me = api.get("/api/v1/me").await?;
    let id = me["user"]["id"]
        .as_i64()
        .context("the server did not say who the token belongs to")?;
    let now = Utc::now();
    let v = api
        .get(&format!(
            "/api/v1/users/{id}/shifts?from={}&to={}",
            param(now),
            param(now + Duration::days(days))
        ))
        .await?;
    if api.json {
        output::json(&v);
        return Ok(());
    }
    let tz = zone(&me["user"]["time_zone"]);
    let list = v.as_array().map(Vec::as_slice).unwrap_or(&[]);
    println!(
        "Shifts of {} for the next {days} day(s), times in {} (your time zone):",
        output::cell(&me["user"]["name"]),
        tz.name()
    );
    if list.is_empty() {
        println!("none.");
        return Ok(());
    }
    print_shifts(list, tz, true);
    Ok(())
}
