//! Group commit for inbound alerts: one writer drains every queued notification
//! into one transaction and one fsync, then answers each sender. A 2xx still means
//! committed; many requests just share the commit. Each notification runs inside
//! its own savepoint, so one that is refused leaves the others in the batch intact.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tocsin_core::alert::{AlertAction, AlertEvent};
use tocsin_core::model::IntegrationKey;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{to_millis, Clock, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::alerts::AlertOutcome;
use crate::tx::WriteTx;
use crate::{Backend, Store, StoreError};

/// Times a batch is retried after losing a deadlock to another node.
const MAX_RETRIES: u32 = 5;
/// Most notifications one transaction takes.
const MAX_BATCH: usize = 512;
/// Notifications that may wait for the writer; senders wait beyond that.
const QUEUE: usize = 4096;

/// One inbound event on its way to the store: the service routing chose for it,
/// the normalized event, and the raw payload it came from.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Service the event was routed to (the key's own service unless a routing rule chose another).
    pub service_id: i64,
    /// The normalized event.
    pub event: AlertEvent,
    /// The payload as received, kept (bounded) for inspection.
    pub raw: String,
}

impl Inbound {
    /// An event for the integration key's own service.
    pub fn new(key: &IntegrationKey, event: AlertEvent, raw: String) -> Inbound {
        Inbound {
            service_id: key.service_id,
            event,
            raw,
        }
    }
}

struct Job {
    key: IntegrationKey,
    events: Vec<Inbound>,
    reply: oneshot::Sender<Result<Vec<AlertOutcome>, StoreError>>,
}

/// Hands notifications to the group-commit writer. Cheap to clone.
#[derive(Clone)]
pub struct AlertWriter {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

/// What the writer has done since the process started, for `/metrics`.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Committed batches.
    pub batches: AtomicU64,
    /// Batches that could not be committed (their senders were told to retry).
    pub failed_batches: AtomicU64,
    /// Batches retried after losing a deadlock to another node.
    pub retries: AtomicU64,
    /// Committed events by what they did: opened, repeated, updated, dropped,
    /// suppressed, unsuppressed; and refused (the store refused the notification).
    pub opened: AtomicU64,
    /// See `opened`.
    pub repeated: AtomicU64,
    /// See `opened`.
    pub updated: AtomicU64,
    /// See `opened`.
    pub dropped: AtomicU64,
    /// See `opened`.
    pub suppressed: AtomicU64,
    /// See `opened`.
    pub unsuppressed: AtomicU64,
    /// Notifications the store refused.
    pub refused: AtomicU64,
    /// Notifications waiting for the writer now.
    pub queued: AtomicU64,
}

impl WriterStats {
    fn count(&self, o: &AlertOutcome) {
        let c = match o {
            AlertOutcome::Opened { .. } => &self.opened,
            AlertOutcome::Repeated { .. } => &self.repeated,
            AlertOutcome::Updated { .. } => &self.updated,
            AlertOutcome::Dropped => &self.dropped,
            AlertOutcome::Suppressed { .. } => &self.suppressed,
            AlertOutcome::Unsuppressed { .. } => &self.unsuppressed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

impl AlertWriter {
    /// What the writer has done so far.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Applies a notification's events; returns once they are committed.
    pub async fn submit(
        &self,
        key: IntegrationKey,
        events: Vec<Inbound>,
    ) -> Result<Vec<AlertOutcome>, StoreError> {
        let (reply, rx) = oneshot::channel();
        // PostgreSQL stores no NUL in text or JSON: one in a payload must not make
        // every batch it joins fail.
        let events = events
            .into_iter()
            .map(|i| Inbound {
                service_id: i.service_id,
                event: i.event.without_nul(),
                raw: if i.raw.contains('\0') {
                    tocsin_core::alert::no_nul(&i.raw)
                } else {
                    i.raw
                },
            })
            .collect();
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Job { key, events, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the alert writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the alert writer has stopped".into()))?
    }
}

impl Store {
    /// Starts the group-commit writer for alerts (one per process).
    pub fn alert_writer(
        &self,
        settings: Arc<IncidentSettings>,
        clock: Arc<dyn Clock>,
    ) -> AlertWriter {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        let store = self.clone();
        let stats = Arc::new(WriterStats::default());
        let writer_stats = stats.clone();
        tokio::spawn(async move {
            let stats = writer_stats;
            let mut jobs = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = rx.recv().await {
                jobs.push(first);
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                stats.queued.fetch_sub(jobs.len() as u64, Ordering::Relaxed);
                store
                    .commit_batch(&settings, &mut jobs, clock.now(), &stats)
                    .await;
            }
        });
        AlertWriter { tx, stats }
    }

    async fn commit_batch(
        &self,
        settings: &IncidentSettings,
        jobs: &mut Vec<Job>,
        now: Timestamp,
        stats: &WriterStats,
    ) {
        let mut attempt = 0;
        let mut bulk = true;
        let outcome = loop {
            match self.try_batch(settings, jobs, now, bulk).await {
                // A refused notification whose repeats were counted with the batch's:
                // nothing is committed; it hears why, and the others go again without
                // it, notification by notification, so no other refusal can undo them.
                Ok(Batch::Exclude(i, e)) => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    let job = jobs.remove(i);
                    let _ = job.reply.send(Err(e));
                    if jobs.is_empty() {
                        return;
                    }
                    bulk = false;
                }
                Ok(Batch::Done(results)) => break Ok(results),
                // Two nodes updating the same alerts in another order (PostgreSQL):
                // the database picked this batch to fail; nothing of it is committed, so again.
                Err(e) if attempt < MAX_RETRIES && retryable(&e) => {
                    attempt += 1;
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(
                        rand::random::<u64>() % (20 * attempt as u64) + 1,
                    ))
                    .await;
                }
                // The bulk statement itself failed: once more without it, so that
                // whatever broke it is one notification's refusal, not everyone's.
                Err(e) if bulk => {
                    tracing::warn!(error = %e, "bulk repeat statement failed; batch applied one by one");
                    bulk = false;
                }
                Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok(results) => {
                stats.batches.fetch_add(1, Ordering::Relaxed);
                for (job, result) in jobs.drain(..).zip(results) {
                    match &result {
                        Ok(outcomes) => outcomes.iter().for_each(|o| stats.count(o)),
                        Err(_) => {
                            stats.refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                // Nothing of the batch is committed: every sender hears so and may retry.
                tracing::error!(error = %e, jobs = jobs.len(), "alert batch not committed");
                for job in jobs.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Unavailable(format!("not committed: {e}"))));
                }
            }
        }
    }

    // One transaction: first every repeat trigger of an open alert in one statement,
    // then the rest notification by notification, then one event for the repeats.
    async fn try_batch(
        &self,
        settings: &IncidentSettings,
        jobs: &[Job],
        now: Timestamp,
        bulk: bool,
    ) -> Result<Batch, StoreError> {
        let mut w = self.write().await?;
        let counted = if bulk {
            self.bulk_repeats(&mut w, jobs, now).await?
        } else {
            jobs.iter().map(|j| vec![None; j.events.len()]).collect()
        };
        let mut results = Vec::with_capacity(jobs.len());
        let mut repeated = Vec::new();
        for (i, (job, pre)) in jobs.iter().zip(counted).enumerate() {
            let result = if pre.iter().all(Option::is_some) {
                Ok(pre.into_iter().flatten().collect())
            } else {
                match self.apply_job(&mut w, settings, job, &pre, now).await? {
                    // Its bulk-counted repeats are outside its savepoint: a refusal must
                    // not keep them (the sender retries), so the batch is undone instead.
                    Err(e) if pre.iter().any(Option::is_some) => return Ok(Batch::Exclude(i, e)),
                    r => r,
                }
            };
            if let Ok(outcomes) = &result {
                repeated.extend(outcomes.iter().filter_map(|o| match o {
                    AlertOutcome::Repeated { alert_id } => Some(*alert_id),
                    _ => None,
                }));
            }
            results.push(result);
        }
        self.record_repeats(&mut w, repeated, now).await?;
        w.commit().await?;
        Ok(Batch::Done(results))
    }

    // Ok(Err(_)): the job is refused and rolled back to its savepoint; the batch goes on.
    // Err(_): the transaction itself failed; the whole batch is lost.
    async fn apply_job(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        job: &Job,
        pre: &[Option<AlertOutcome>],
        now: Timestamp,
    ) -> Result<Result<Vec<AlertOutcome>, StoreError>, StoreError> {
        for attempt in 0..2 {
            sqlx::query("SAVEPOINT tocsin_job")
                .execute(&mut *w.tx)
                .await?;
            let mut outcomes = Vec::with_capacity(job.events.len());
            let mut failed = None;
            for (inbound, done) in job.events.iter().zip(pre) {
                if let Some(o) = done {
                    outcomes.push(o.clone());
                    continue;
                }
                match self.apply_alert(w, settings, &job.key, inbound, now).await {
                    Ok(o) => outcomes.push(o),
                    // A deadlock fails the transaction, not the notification: the batch goes again.
                    Err(e) if retryable(&e) => return Err(e),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                None => {
                    sqlx::query("RELEASE SAVEPOINT tocsin_job")
                        .execute(&mut *w.tx)
                        .await?;
                    return Ok(Ok(outcomes));
                }
                Some(e) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT tocsin_job")
                        .execute(&mut *w.tx)
                        .await?;
                    sqlx::query("RELEASE SAVEPOINT tocsin_job")
                        .execute(&mut *w.tx)
                        .await?;
                    // A concurrent node opened the same alert first (PostgreSQL): once more finds it.
                    let retry = matches!(&e, StoreError::Database(sqlx::Error::Database(d)) if d.is_unique_violation());
                    if !(retry && attempt == 0) {
                        return Ok(Err(e));
                    }
                }
            }
        }
        Ok(Err(StoreError::Unavailable("retry limit".into())))
    }

    // Every trigger in the batch whose (service, dedup key) sees only triggers in this
    // batch is a candidate: triggers of an open alert commute, so they are summed per
    // alert and counted in one UPDATE. Returns, per job and event, the outcome of those
    // counted; the others (new alerts, acknowledge/resolve, keys mixing actions) go the
    // ordinary way, in order.
    async fn bulk_repeats(
        &self,
        w: &mut WriteTx,
        jobs: &[Job],
        now: Timestamp,
    ) -> Result<Vec<Vec<Option<AlertOutcome>>>, StoreError> {
        let mut only_triggers: HashMap<(i64, &str), bool> = HashMap::new();
        for inbound in jobs.iter().flat_map(|j| &j.events) {
            let trigger = inbound.event.action == AlertAction::Trigger;
            only_triggers
                .entry((inbound.service_id, inbound.event.dedup_key.as_str()))
                .and_modify(|t| *t &= trigger)
                .or_insert(trigger);
        }
        let mut index: HashMap<(i64, &str), usize> = HashMap::new();
        let mut sums: Vec<Repeat> = Vec::new();
        for inbound in jobs.iter().flat_map(|j| &j.events) {
            let k = (inbound.service_id, inbound.event.dedup_key.as_str());
            if !only_triggers[&k] {
                continue;
            }
            match index.get(&k) {
                Some(&i) => sums[i].add(inbound),
                None => {
                    index.insert(k, sums.len());
                    sums.push(Repeat::new(inbound));
                }
            }
        }
        sums.iter_mut().for_each(Repeat::finish);
        // One order on every node, so two nodes counting the same alerts lock them in
        // the same order (PostgreSQL) instead of deadlocking.
        sums.sort_unstable_by(|a, b| (a.service_id, a.dedup_key).cmp(&(b.service_id, b.dedup_key)));
        let mut counted: HashMap<(i64, String), i64> = HashMap::new();
        let mut rest = &sums[..];
        while !rest.is_empty() {
            let size = chunk_size(rest.len());
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            let updated: Vec<(i64, i64, String)> =
                self.bulk_repeat_chunk(w, chunk, size, now).await?;
            counted.extend(updated.into_iter().map(|(id, s, k)| ((s, k), id)));
        }
        for r in &sums {
            let k = (r.service_id, r.dedup_key.to_string());
            if !counted.contains_key(&k) {
                w.cache.not_open.insert(k);
            }
        }
        Ok(jobs
            .iter()
            .map(|j| {
                j.events
                    .iter()
                    .map(|inbound| {
                        let k = (
                            inbound.service_id,
                            inbound.event.dedup_key.as_str().to_string(),
                        );
                        counted
                            .get(&k)
                            .map(|&alert_id| AlertOutcome::Repeated { alert_id })
                    })
                    .collect()
            })
            .collect())
    }

    // One statement for up to `size` alerts; a short chunk repeats its last row to
    // fill the statement's shape (a repeated row matches the same alert and updates
    // it once), so only a handful of statement shapes are ever prepared.
    async fn bulk_repeat_chunk(
        &self,
        w: &mut WriteTx,
        chunk: &[Repeat<'_>],
        size: usize,
        now: Timestamp,
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let sql = bulk_repeat_sql(self.backend, size);
        let mut q = sqlx::query_as(&sql).bind(to_millis(now));
        let last = chunk.last().expect("a chunk is never empty");
        for r in chunk
            .iter()
            .chain(std::iter::repeat_n(last, size - chunk.len()))
        {
            let ev = &r.last.event;
            q = q
                .bind(r.service_id)
                .bind(r.dedup_key)
                .bind(r.n)
                .bind(ev.severity.as_str())
                .bind(ev.summary.as_str())
                .bind(ev.source.as_str())
                .bind(r.labels.clone())
                .bind(r.details.clone())
                .bind(r.links.clone())
                .bind(r.raw.clone());
        }
        Ok(q.fetch_all(&mut *w.tx).await?)
    }

    // Repeats change only counters: one event per batch lists them, which keeps
    // the log complete without writing a row per repeated alert.
    async fn record_repeats(
        &self,
        w: &mut WriteTx,
        mut ids: Vec<i64>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        ids.sort_unstable();
        let Some(first) = ids.first().copied() else {
            return Ok(());
        };
        let mut alerts = serde_json::Map::new();
        for chunk in ids.chunk_by(|a, b| a == b) {
            alerts.insert(chunk[0].to_string(), chunk.len().into());
        }
        let actor = crate::events::Actor {
            user_id: None,
            name: "alert ingest".into(),
        };
        crate::events::append(
            w,
            crate::events::NewEvent {
                at: now,
                actor: &actor,
                entity: "alert",
                entity_id: first,
                incident_id: None,
                kind: "alert.repeated",
                data: serde_json::json!({ "repeats": alerts }),
            },
        )
        .await?;
        Ok(())
    }
}

// What one attempt at a batch came to.
enum Batch {
    /// Committed: each job's outcome or refusal, in order.
    Done(Vec<Result<Vec<AlertOutcome>, StoreError>>),
    /// Rolled back: job `.0` is refused with `.1` and must leave the batch.
    Exclude(usize, StoreError),
}

pub(crate) fn retryable(e: &StoreError) -> bool {
    // 40001 serialization failure, 40P01 deadlock detected.
    matches!(e, StoreError::Database(sqlx::Error::Database(d))
        if matches!(d.code().as_deref(), Some("40001") | Some("40P01")))
}

// Repeat triggers of one alert within a batch, summed: the count, and the last
// event's summary, severity and source; labels merged in order; the last details and
// links given.
struct Repeat<'a> {
    service_id: i64,
    dedup_key: &'a str,
    n: i64,
    last: &'a Inbound,
    labels_map: serde_json::Map<String, serde_json::Value>,
    details_value: Option<&'a serde_json::Value>,
    links_value: Option<&'a [tocsin_core::alert::AlertLink]>,
    // As bound: JSON text, and the bounded raw payload.
    labels: Option<String>,
    details: Option<String>,
    links: Option<String>,
    raw: String,
}

impl<'a> Repeat<'a> {
    fn new(inbound: &'a Inbound) -> Self {
        let mut r = Repeat {
            service_id: inbound.service_id,
            dedup_key: inbound.event.dedup_key.as_str(),
            n: 0,
            last: inbound,
            labels_map: serde_json::Map::new(),
            details_value: None,
            links_value: None,
            labels: None,
            details: None,
            links: None,
            raw: String::new(),
        };
        r.add(inbound);
        r
    }

    fn add(&mut self, inbound: &'a Inbound) {
        let ev = &inbound.event;
        self.n += 1;
        self.last = inbound;
        self.labels_map
            .extend(ev.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        if !ev.details.is_null() {
            self.details_value = Some(&ev.details);
        }
        if !ev.links.is_empty() {
            self.links_value = Some(&ev.links);
        }
    }

    // Renders what the statement binds, once the last repeat is known.
    fn finish(&mut self) {
        self.labels = (!self.labels_map.is_empty())
            .then(|| serde_json::to_string(&self.labels_map).unwrap_or_default());
        self.details = self.details_value.map(|d| d.to_string());
        self.links = self
            .links_value
            .map(|l| serde_json::to_string(l).unwrap_or_default());
        self.raw = crate::alerts::bounded(&self.last.raw);
    }
}

// Statement shapes: a chunk of alerts is padded up to the next of these.
const CHUNK_SIZES: [usize; 5] = [1, 4, 16, 64, 256];

fn chunk_size(remaining: usize) -> usize {
    CHUNK_SIZES
        .into_iter()
        .find(|&s| s >= remaining)
        .unwrap_or(CHUNK_SIZES[CHUNK_SIZES.len() - 1])
}

// $1: now; then per alert: service_id, dedup_key, n, severity, summary, source,
// labels, details, links, raw. Only open alerts are counted; a repeat updates what
// it says and keeps what it does not mention. VALUES names its columns column1… on
// both back ends.
fn bulk_repeat_sql(backend: Backend, rows: usize) -> String {
    use std::fmt::Write;
    let merge = match backend {
        Backend::Sqlite => "json_patch(alerts.labels, ev.labels)",
        Backend::Postgres => "(alerts.labels::jsonb || ev.labels::jsonb)::text",
    };
    // SQLite gets anonymous `?` (bound in order of appearance, which is bind order
    // here): looking up 2,500 numbered parameters by name is quadratic in SQLite.
    let mut values = String::with_capacity(rows * 48);
    for r in 0..rows {
        values.push_str(if r == 0 { "(" } else { ",(" });
        for c in 0..10 {
            if c > 0 {
                values.push(',');
            }
            match backend {
                Backend::Sqlite => values.push('?'),
                Backend::Postgres => {
                    let _ = write!(values, "${}", 2 + r * 10 + c);
                }
            }
        }
        values.push(')');
    }
    let now = match backend {
        Backend::Sqlite => "?",
        Backend::Postgres => "$1",
    };
    format!(
        "UPDATE alerts SET count = alerts.count + ev.n, last_seen = {now}, \
         severity = ev.severity, summary = ev.summary, source = ev.source, \
         labels = CASE WHEN ev.labels IS NULL THEN alerts.labels ELSE {merge} END, \
         details = COALESCE(ev.details, alerts.details), links = COALESCE(ev.links, alerts.links), raw = ev.raw \
         FROM (SELECT column1 AS service_id, column2 AS dedup_key, column3 AS n, column4 AS severity, \
               column5 AS summary, column6 AS source, column7 AS labels, column8 AS details, \
               column9 AS links, column10 AS raw FROM (VALUES {values}) AS v) AS ev \
         WHERE alerts.service_id = ev.service_id AND alerts.dedup_key = ev.dedup_key AND alerts.status <> 'resolved' \
         AND alerts.suppressed_by IS NULL RETURNING alerts.id, alerts.service_id, alerts.dedup_key"
    )
}
