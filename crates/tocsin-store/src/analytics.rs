//! What analytics read: the facts of incidents, alerts, pages and responders,
//! and daily rollups of incident metrics kept correct by version.
//!
//! `analytics_facts` holds each incident's instants as typed columns, written
//! with the incident in its transaction ([`write_facts`]). Every change that
//! can alter a UTC day's numbers bumps that day's version in the same
//! transaction (incident writes here; alerts attached or moved and services
//! moved between teams by triggers, migration 0023). A day's rollup rows are
//! used only while the version they were computed at is the day's current
//! one, and are recomputed on demand otherwise, so a rollup is never stale:
//! a range is answered from rollups for whole UTC days and from exact facts
//! for the partial days at its edges.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use sqlx::{AnyConnection, Row};
use tocsin_core::analytics::noise::AlertFacts;
use tocsin_core::analytics::oncall::{PageFact, Responder};
use tocsin_core::analytics::{GroupBy, GroupKey, IncidentFacts, Rollup, Window};
use tocsin_core::escalation::WorkingHoursParts;
use tocsin_core::model::Incident;
use tocsin_core::time::{from_millis, to_millis};

use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Rollups already read, by (group kind, start ms, end ms, day version): a
/// whole day's from its rows, a part-day's from its facts. An entry is only
/// found while its day's version is unchanged, so it is never stale; the map is
/// emptied when it grows past `CACHE_ENTRIES`.
#[derive(Default)]
pub(crate) struct RollupCache(std::sync::Mutex<HashMap<CacheKey, CachedRollups>>);
/// Grouping, start and end (ms), and the day's version.
type CacheKey = (&'static str, i64, i64, i64);
type CachedRollups = Arc<Vec<(GroupKey, Rollup)>>;
const CACHE_ENTRIES: usize = 50_000;

impl RollupCache {
    fn get(&self, key: &CacheKey) -> Option<CachedRollups> {
        self.0.lock().ok()?.get(key).cloned()
    }

    fn put(&self, key: CacheKey, value: CachedRollups) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= CACHE_ENTRIES {
                m.clear();
            }
            m.insert(key, value);
        }
    }
}

/// The migration that adds the facts table; existing incidents are copied in.
pub(crate) const FACTS_VERSION: i64 = 23;
const DAY_MS: i64 = 86_400_000;
// Days recomputed per query when rollups are refreshed.
const REFRESH_CHUNK_DAYS: i64 = 31;

/// The UTC day (days since 1970-01-01) an instant in milliseconds falls on.
pub fn utc_day(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Writes an incident's facts and bumps the versions of the days it was and is on.
pub(crate) async fn write_facts(w: &mut WriteTx, inc: &Incident) -> Result<(), StoreError> {
    upsert_facts(&mut w.tx, inc).await
}

async fn upsert_facts(conn: &mut AnyConnection, inc: &Incident) -> Result<(), StoreError> {
    let old: Option<i64> =
        sqlx::query_scalar("SELECT day FROM analytics_facts WHERE incident_id = $1")
            .bind(inc.id)
            .fetch_optional(&mut *conn)
            .await?;
    let declared = to_millis(inc.created_at);
    let day = utc_day(declared);
    sqlx::query(
        "INSERT INTO analytics_facts (incident_id, day, declared_at, severity, began_at, noticed_at, \
         acknowledged_at, mitigated_at, resolved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (incident_id) DO UPDATE SET day = excluded.day, declared_at = excluded.declared_at, \
         severity = excluded.severity, began_at = excluded.began_at, noticed_at = excluded.noticed_at, \
         acknowledged_at = excluded.acknowledged_at, mitigated_at = excluded.mitigated_at, \
         resolved_at = excluded.resolved_at",
    )
    .bind(inc.id)
    .bind(day)
    .bind(declared)
    .bind(&inc.severity)
    .bind(inc.occurred_at.map(to_millis))
    .bind(to_millis(inc.detected_at.unwrap_or(inc.created_at)))
    .bind(inc.acknowledged_at.map(to_millis))
    .bind(inc.mitigated_at.map(to_millis))
    .bind(inc.resolved_at.map(to_millis))
    .execute(&mut *conn)
    .await?;
    bump_day(conn, day).await?;
    if let Some(old) = old.filter(|&o| o != day) {
        bump_day(conn, old).await?;
    }
    Ok(())
}

async fn bump_day(conn: &mut AnyConnection, day: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO analytics_days (day, version) VALUES ($1, 1) \
         ON CONFLICT (day) DO UPDATE SET version = analytics_days.version + 1",
    )
    .bind(day)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Copies the facts of every incident stored before migration 0023.
pub(crate) async fn backfill_facts(conn: &mut AnyConnection) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT id, doc FROM incidents ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let inc = crate::incidents::parse_doc(r.try_get("doc")?, id)?;
        upsert_facts(conn, &inc).await?;
    }
    Ok(())
}

/// What a rollup row is kept per: severity for `all`, all severities ('') for
/// services and teams.
fn kind_of(by: GroupBy) -> &'static str {
    match by {
        GroupBy::All | GroupBy::Severity => "all",
        GroupBy::Service => "service",
        GroupBy::Team => "team",
    }
}

fn key_of(by: GroupBy, group_id: i64, severity: String) -> GroupKey {
    match by {
        GroupBy::All => GroupKey::All,
        GroupBy::Severity => GroupKey::Severity(severity),
        GroupBy::Service => GroupKey::Service(group_id),
        GroupBy::Team => GroupKey::Team(group_id),
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(Box::new(e)))
}

impl Store {
    /// Incidents declared in `window`: how many, from the facts index.
    pub async fn incidents_declared(&self, window: Window) -> Result<i64, StoreError> {
        self.incidents_declared_up_to(window, i64::MAX).await
    }

    /// Incidents declared in `window`, counted up to `cap` (cheaper than
    /// counting them all when only "more than `cap`?" matters).
    pub async fn incidents_declared_up_to(
        &self,
        window: Window,
        cap: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM analytics_facts \
             WHERE declared_at >= $1 AND declared_at < $2 LIMIT $3) capped",
        )
        .bind(to_millis(window.from))
        .bind(to_millis(window.to))
        .bind(cap)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The exact facts of every incident declared in `window`, by declaration.
    pub async fn incident_facts(&self, window: Window) -> Result<Vec<IncidentFacts>, StoreError> {
        self.facts_between(to_millis(window.from), to_millis(window.to), true)
            .await
    }

    // Without `groups`, services and teams are left empty (one query instead of three).
    async fn facts_between(
        &self,
        from: i64,
        to: i64,
        groups: bool,
    ) -> Result<Vec<IncidentFacts>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.incident_id, f.severity, f.began_at, f.noticed_at, f.declared_at, \
             f.acknowledged_at, f.mitigated_at, f.resolved_at, \
             (SELECT MIN(a.first_seen) FROM alerts a WHERE a.incident_id = f.incident_id) AS first_alert, \
             (SELECT COUNT(*) FROM alerts a WHERE a.incident_id = f.incident_id) AS alerts \
             FROM analytics_facts f WHERE f.declared_at >= $1 AND f.declared_at < $2 \
             ORDER BY f.declared_at, f.incident_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let (links, teams) = if groups {
            let links = sqlx::query(
                "SELECT s.incident_id, s.service_id FROM incident_services s \
                 JOIN analytics_facts f ON f.incident_id = s.incident_id \
                 WHERE f.declared_at >= $1 AND f.declared_at < $2",
            )
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
            (links, self.service_teams().await?)
        } else {
            (Vec::new(), HashMap::new())
        };
        let mut services: HashMap<i64, Vec<i64>> = HashMap::new();
        for l in links {
            services
                .entry(l.try_get("incident_id")?)
                .or_default()
                .push(l.try_get("service_id")?);
        }
        let opt = |r: &sqlx::any::AnyRow, c: &str| -> Result<_, StoreError> {
            Ok(r.try_get::<Option<i64>, _>(c)?.map(from_millis))
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("incident_id")?;
            let mut service_ids = services.remove(&id).unwrap_or_default();
            service_ids.sort_unstable();
            let mut team_ids: Vec<i64> = service_ids
                .iter()
                .filter_map(|s| teams.get(s).copied().flatten())
                .collect();
            team_ids.sort_unstable();
            team_ids.dedup();
            let noticed = from_millis(r.try_get("noticed_at")?);
            let first_alert = opt(&r, "first_alert")?;
            let alerts: i64 = r.try_get("alerts")?;
            out.push(IncidentFacts {
                incident_id: id,
                severity: r.try_get("severity")?,
                service_ids,
                team_ids,
                alert_count: u32::try_from(alerts).unwrap_or(u32::MAX),
                began_at: opt(&r, "began_at")?,
                detected_at: first_alert.map_or(noticed, |a| a.min(noticed)),
                declared_at: from_millis(r.try_get("declared_at")?),
                acknowledged_at: opt(&r, "acknowledged_at")?,
                mitigated_at: opt(&r, "mitigated_at")?,
                resolved_at: opt(&r, "resolved_at")?,
            });
        }
        Ok(out)
    }

    async fn service_teams(&self) -> Result<HashMap<i64, Option<i64>>, StoreError> {
        let rows = sqlx::query("SELECT id, team_id FROM services")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("team_id")?)))
            .collect()
    }

    /// Recomputes the rollups of every day in `[from_day, to_day)` whose
    /// rollups are missing or older than the day's version; returns how many
    /// days it recomputed.
    pub async fn refresh_rollups(&self, from_day: i64, to_day: i64) -> Result<usize, StoreError> {
        let stale: Vec<(i64, i64)> = sqlx::query(
            "SELECT d.day, d.version FROM analytics_days d \
             LEFT JOIN analytics_rolled r ON r.day = d.day \
             WHERE d.day >= $1 AND d.day < $2 AND (r.version IS NULL OR r.version <> d.version) \
             ORDER BY d.day",
        )
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("day")?, r.try_get("version")?)))
        .collect::<Result<_, StoreError>>()?;
        let mut i = 0;
        while i < stale.len() {
            // A run of days close together, read with one query.
            let first = stale[i].0;
            let mut j = i;
            while j + 1 < stale.len() && stale[j + 1].0 < first + REFRESH_CHUNK_DAYS {
                j += 1;
            }
            self.recompute_days(&stale[i..=j]).await?;
            i = j + 1;
        }
        Ok(stale.len())
    }

    // The versions were read before the facts: a change committed in between
    // leaves a newer version than the one recorded, so the day is recomputed
    // again next time rather than trusted.
    async fn recompute_days(&self, days: &[(i64, i64)]) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (days.first(), days.last()) else {
            return Ok(());
        };
        let facts = self
            .facts_between(first.0 * DAY_MS, (last.0 + 1) * DAY_MS, true)
            .await?;
        let wanted: BTreeSet<i64> = days.iter().map(|d| d.0).collect();
        let mut rows: BTreeMap<(i64, &'static str, i64, String), Rollup> = BTreeMap::new();
        for f in &facts {
            let day = utc_day(to_millis(f.declared_at));
            if !wanted.contains(&day) {
                continue;
            }
            rows.entry((day, "all", 0, f.severity.clone()))
                .or_default()
                .add(f);
            for &s in &f.service_ids {
                rows.entry((day, "service", s, String::new()))
                    .or_default()
                    .add(f);
            }
            for &t in &f.team_ids {
                rows.entry((day, "team", t, String::new()))
                    .or_default()
                    .add(f);
            }
        }
        let mut w = self.write().await?;
        for &(day, version) in days {
            sqlx::query("DELETE FROM analytics_rollups WHERE day = $1")
                .bind(day)
                .execute(&mut *w.tx)
                .await?;
            sqlx::query(
                "INSERT INTO analytics_rolled (day, version) VALUES ($1, $2) \
                 ON CONFLICT (day) DO UPDATE SET version = excluded.version",
            )
            .bind(day)
            .bind(version)
            .execute(&mut *w.tx)
            .await?;
        }
        for ((day, kind, group_id, severity), rollup) in rows {
            sqlx::query(
                "INSERT INTO analytics_rollups (day, group_kind, group_id, severity, rollup) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (group_kind, day, group_id, severity) \
                 DO UPDATE SET rollup = excluded.rollup",
            )
            .bind(day)
            .bind(kind)
            .bind(group_id)
            .bind(severity)
            .bind(serde_json::to_string(&rollup).map_err(json_err)?)
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await
    }

    /// Mergeable numbers per group for each of `buckets` (sorted, adjacent
    /// windows, such as the weeks of a trend): whole UTC days inside one bucket
    /// from the daily rollups (refreshed first if stale), the rest from exact
    /// facts. Counts, alerts, means and time between failures are exact;
    /// percentiles are within 1/64 (see `DurationHistogram`).
    pub async fn rollups(
        &self,
        by: GroupBy,
        buckets: &[Window],
    ) -> Result<Vec<BTreeMap<GroupKey, Rollup>>, StoreError> {
        let mut out = vec![BTreeMap::<GroupKey, Rollup>::new(); buckets.len()];
        let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
            return Ok(out);
        };
        let (lo, hi) = (to_millis(first.from), to_millis(last.to));
        if hi <= lo {
            return Ok(out);
        }
        let starts: Vec<i64> = buckets.iter().map(|b| to_millis(b.from)).collect();
        let bucket_of = |ms: i64| {
            let i = starts.partition_point(|&s| s <= ms);
            i.checked_sub(1).filter(|&i| ms < to_millis(buckets[i].to))
        };
        // A day is whole when it lies inside one bucket; other days are cut at
        // bucket boundaries into pieces read from facts.
        let (d0, d1) = (utc_day(lo), utc_day(hi - 1) + 1);
        let mut whole: Vec<(i64, usize)> = Vec::new();
        let mut pieces: Vec<(i64, i64, i64, usize)> = Vec::new();
        for day in d0..d1 {
            let (s, e) = ((day * DAY_MS).max(lo), ((day + 1) * DAY_MS).min(hi));
            match (bucket_of(day * DAY_MS), bucket_of((day + 1) * DAY_MS - 1)) {
                (Some(a), Some(b)) if a == b => whole.push((day, a)),
                _ => {
                    let mut cut = s;
                    while cut < e {
                        let Some(b) = bucket_of(cut) else { break };
                        let end = to_millis(buckets[b].to).min(e);
                        pieces.push((day, cut, end, b));
                        cut = end;
                    }
                }
            }
        }
        if !whole.is_empty() {
            self.refresh_rollups(d0, d1).await?;
        }
        // Each day's version, and whether its stored rollups are of that version;
        // a whole day whose rollups a concurrent change made stale again is read
        // from facts like a part-day.
        let mut versions: HashMap<i64, i64> = HashMap::new();
        let mut fresh: BTreeSet<i64> = BTreeSet::new();
        for r in sqlx::query(
            "SELECT d.day, d.version, r.version AS rolled FROM analytics_days d \
             LEFT JOIN analytics_rolled r ON r.day = d.day WHERE d.day >= $1 AND d.day < $2",
        )
        .bind(d0)
        .bind(d1)
        .fetch_all(&self.pool)
        .await?
        {
            let (day, v): (i64, i64) = (r.try_get("day")?, r.try_get("version")?);
            if r.try_get::<Option<i64>, _>("rolled")? == Some(v) {
                fresh.insert(day);
            }
            versions.insert(day, v);
        }
        whole.retain(|&(day, b)| {
            let ok = fresh.contains(&day) || !versions.contains_key(&day);
            if !ok {
                pieces.push((day, day * DAY_MS, (day + 1) * DAY_MS, b));
            }
            ok
        });
        let kind = kind_of(by);
        // Cached per grouping, not per row kind: `all` rows give both All and Severity keys.
        let by_name = match by {
            GroupBy::All => "all",
            GroupBy::Severity => "severity",
            GroupBy::Service => "service",
            GroupBy::Team => "team",
        };
        let cache = &self.analytics_cache;
        let mut missing: Vec<(i64, usize)> = Vec::new();
        for &(day, b) in &whole {
            let Some(&v) = versions.get(&day) else {
                continue;
            };
            match cache.get(&(by_name, day * DAY_MS, (day + 1) * DAY_MS, v)) {
                Some(rows) => rows.iter().for_each(|(k, r)| {
                    out[b].entry(k.clone()).or_default().merge(r);
                }),
                None => missing.push((day, b)),
            }
        }
        if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
            let rows = sqlx::query(
                "SELECT day, group_id, severity, rollup FROM analytics_rollups \
                 WHERE group_kind = $1 AND day >= $2 AND day < $3",
            )
            .bind(kind)
            .bind(first.0)
            .bind(last.0 + 1)
            .fetch_all(&self.pool)
            .await?;
            let want: HashMap<i64, usize> = missing.iter().copied().collect();
            let mut by_day: BTreeMap<i64, Vec<(GroupKey, Rollup)>> = BTreeMap::new();
            for r in rows {
                let day: i64 = r.try_get("day")?;
                if !want.contains_key(&day) {
                    continue;
                }
                let text: String = r.try_get("rollup")?;
                let rollup: Rollup = serde_json::from_str(&text).map_err(json_err)?;
                let key = key_of(by, r.try_get("group_id")?, r.try_get("severity")?);
                by_day.entry(day).or_default().push((key, rollup));
            }
            for (day, b) in missing {
                let rows = by_day.remove(&day).unwrap_or_default();
                for (k, r) in &rows {
                    out[b].entry(k.clone()).or_default().merge(r);
                }
                if let Some(&v) = versions.get(&day) {
                    cache.put(
                        (by_name, day * DAY_MS, (day + 1) * DAY_MS, v),
                        Arc::new(rows),
                    );
                }
            }
        }
        let groups = matches!(by, GroupBy::Service | GroupBy::Team);
        for (day, s, e, b) in pieces {
            let Some(&v) = versions.get(&day) else {
                continue;
            };
            let key = (by_name, s, e, v);
            let rows = match cache.get(&key) {
                Some(rows) => rows,
                None => {
                    let mut m: BTreeMap<GroupKey, Rollup> = BTreeMap::new();
                    for f in self.facts_between(s, e, groups).await? {
                        for k in GroupKey::of(&f, by) {
                            m.entry(k).or_default().add(&f);
                        }
                    }
                    let rows = Arc::new(m.into_iter().collect::<Vec<_>>());
                    cache.put(key, rows.clone());
                    rows
                }
            };
            for (k, r) in rows.iter() {
                out[b].entry(k.clone()).or_default().merge(r);
            }
        }
        Ok(out)
    }

    /// The facts of alerts opened in `window`, for noise analysis. An alert
    /// counts as auto-resolved when a resolve event with no user behind it
    /// (its source) closed it; acknowledged when a person acknowledged it or
    /// did anything on its incident (an incident resolved by its alerts'
    /// source counts as moved out of `triggered`, but nobody acted); noted
    /// when its incident has notes.
    /// Its rule is the alerting rule that fired in the source: the `alertname`
    /// label (Prometheus, Alertmanager, Grafana), else the PagerDuty event's `class`.
    pub async fn alert_facts(&self, window: Window) -> Result<Vec<AlertFacts>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id, a.service_id, a.integration, a.dedup_key, a.first_seen, a.resolved_at, a.count, \
             a.labels, \
             (SELECT COUNT(*) FROM events e WHERE e.entity = 'alert' AND e.entity_id = a.id \
              AND e.kind = 'alert.resolved' AND e.actor_id IS NULL AND e.actor <> 'system') AS by_source, \
             (SELECT COUNT(*) FROM events e WHERE e.entity = 'alert' AND e.entity_id = a.id \
              AND e.kind = 'alert.acknowledged' AND e.actor_id IS NOT NULL) AS acked, \
             (SELECT COUNT(*) FROM events e WHERE e.incident_id = a.incident_id \
              AND e.actor_id IS NOT NULL) AS incident_acked, \
             (SELECT COUNT(*) FROM notes n WHERE n.incident_id = a.incident_id) AS notes \
             FROM alerts a WHERE a.first_seen >= $1 AND a.first_seen < $2 ORDER BY a.id",
        )
        .bind(to_millis(window.from))
        .bind(to_millis(window.to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| -> Result<i64, StoreError> { Ok(r.try_get::<i64, _>(c)?) };
                Ok(AlertFacts {
                    alert_id: n("id")?,
                    service_id: n("service_id")?,
                    integration: r.try_get("integration")?,
                    rule: alert_rule(&r.try_get::<String, _>("labels")?),
                    dedup_key: r.try_get("dedup_key")?,
                    opened_at: from_millis(n("first_seen")?),
                    resolved_at: r.try_get::<Option<i64>, _>("resolved_at")?.map(from_millis),
                    auto_resolved: n("by_source")? > 0,
                    acknowledged: n("acked")? > 0 || n("incident_acked")? > 0,
                    noted: n("notes")? > 0,
                    triggers: u32::try_from(n("count")?.max(1)).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// Pages sent in `window`: one per person per escalation step (however many
    /// contact methods it went to), at the first hand-over to delivery.
    pub async fn page_facts(&self, window: Window) -> Result<Vec<PageFact>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, incident_id, idempotency_key, handed_at FROM notification_requests \
             WHERE reason = 'escalation' AND handed_at IS NOT NULL \
             AND send_at >= $1 AND send_at < $2",
        )
        .bind(to_millis(window.from) - DAY_MS)
        .bind(to_millis(window.to))
        .fetch_all(&self.pool)
        .await?;
        let mut pages: BTreeMap<(i64, String), PageFact> = BTreeMap::new();
        for r in rows {
            let key: String = r.try_get("idempotency_key")?;
            // esc:{incident}:s{seq}:r{round}:l{level}:u{user}:c{method}:n{rule}
            let step = key.split(":c").next().unwrap_or(&key).to_string();
            let user_id: i64 = r.try_get("user_id")?;
            let sent_at = from_millis(r.try_get("handed_at")?);
            if !window.contains(sent_at) {
                continue;
            }
            let page = PageFact {
                user_id,
                sent_at,
                incident_id: r.try_get("incident_id")?,
            };
            pages
                .entry((user_id, step))
                .and_modify(|p| p.sent_at = p.sent_at.min(sent_at))
                .or_insert(page);
        }
        let mut out: Vec<PageFact> = pages.into_values().collect();
        out.sort_by_key(|p| (p.sent_at, p.user_id));
        Ok(out)
    }

    /// Every user's time zone and working hours, with their names.
    pub async fn responders(&self) -> Result<Vec<(Responder, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, name, time_zone, working_hours FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let user_id: i64 = r.try_get("id")?;
            let zone: String = r.try_get("time_zone")?;
            let hours: Option<String> = r.try_get("working_hours")?;
            let working_hours = hours
                .as_deref()
                .and_then(|h| serde_json::from_str::<WorkingHoursParts>(h).ok())
                .and_then(|p| p.parse("working_hours").ok());
            out.push((
                Responder {
                    user_id,
                    time_zone: zone.parse().unwrap_or(chrono_tz::Tz::UTC),
                    working_hours,
                },
                r.try_get("name")?,
            ));
        }
        Ok(out)
    }
}

impl Store {
    /// Writes incidents as they are (ids, numbers and instants already set)
    /// with their services and analytics facts, in one transaction of
    /// multi-row inserts, and marks their days changed. For benchmark data
    /// sets of millions of incidents: no events, no search index, no paging.
    pub async fn bench_insert_incidents(
        &self,
        settings: &tocsin_core::settings::IncidentSettings,
        incidents: &[Incident],
    ) -> Result<(), StoreError> {
        const ROWS: usize = 400;
        let mut w = self.write().await?;
        let mut days = BTreeSet::new();
        for chunk in incidents.chunks(ROWS) {
            let mut sql = String::from(
                "INSERT INTO incidents (id, status, severity, severity_rank, priority, incident_type, \
                 assignee_id, created_at, updated_at, doc) VALUES ",
            );
            push_rows(&mut sql, chunk.len(), 10);
            let mut q = sqlx::query(&sql);
            for inc in chunk {
                q = q
                    .bind(inc.id)
                    .bind(inc.status.as_str())
                    .bind(inc.severity.clone())
                    .bind(settings.severity_rank(&inc.severity) as i64)
                    .bind(inc.priority.as_str())
                    .bind(inc.incident_type.clone())
                    .bind(inc.assignee_id)
                    .bind(to_millis(inc.created_at))
                    .bind(to_millis(inc.updated_at))
                    .bind(serde_json::to_string(inc).map_err(json_err)?);
            }
            q.execute(&mut *w.tx).await?;
            let links: Vec<(i64, i64)> = chunk
                .iter()
                .flat_map(|i| i.service_ids.iter().map(move |s| (i.id, *s)))
                .collect();
            if !links.is_empty() {
                let mut sql =
                    String::from("INSERT INTO incident_services (incident_id, service_id) VALUES ");
                push_rows(&mut sql, links.len(), 2);
                let mut q = sqlx::query(&sql);
                for (i, s) in links {
                    q = q.bind(i).bind(s);
                }
                q.execute(&mut *w.tx).await?;
            }
            let mut sql = String::from(
                "INSERT INTO analytics_facts (incident_id, day, declared_at, severity, began_at, noticed_at, \
                 acknowledged_at, mitigated_at, resolved_at) VALUES ",
            );
            push_rows(&mut sql, chunk.len(), 9);
            let mut q = sqlx::query(&sql);
            for inc in chunk {
                let declared = to_millis(inc.created_at);
                days.insert(utc_day(declared));
                q = q
                    .bind(inc.id)
                    .bind(utc_day(declared))
                    .bind(declared)
                    .bind(inc.severity.clone())
                    .bind(inc.occurred_at.map(to_millis))
                    .bind(to_millis(inc.detected_at.unwrap_or(inc.created_at)))
                    .bind(inc.acknowledged_at.map(to_millis))
                    .bind(inc.mitigated_at.map(to_millis))
                    .bind(inc.resolved_at.map(to_millis));
            }
            q.execute(&mut *w.tx).await?;
        }
        for day in days {
            bump_day(&mut w.tx, day).await?;
        }
        w.commit().await
    }
}

fn push_rows(sql: &mut String, rows: usize, cols: usize) {
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            n += 1;
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${n}"));
        }
        sql.push(')');
    }
}

/// The alerting rule named by an alert's labels (`alertname`, else `class`).
fn alert_rule(labels: &str) -> Option<String> {
    let labels: serde_json::Map<String, serde_json::Value> = serde_json::from_str(labels).ok()?;
    ["alertname", "class"]
        .iter()
        .find_map(|k| labels.get(*k)?.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
