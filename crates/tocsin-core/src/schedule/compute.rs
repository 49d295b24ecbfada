//! Final shifts: rotations cut by restrictions, layered, overridden, merged.

use chrono::{Datelike, Duration, TimeZone, Utc};
use chrono_tz::Tz;

use super::{Layer, Override, Schedule, Shift, Turn};
use crate::maintenance::local_start;
use crate::time::Timestamp;

/// A span `[start, end)` held by a user.
type Span = (Timestamp, Timestamp, i64);

/// Truncates an instant to the minute.
pub(crate) fn to_minute(t: Timestamp) -> Timestamp {
    Utc.timestamp_opt(t.timestamp().div_euclid(60) * 60, 0)
        .single()
        .unwrap_or(t)
}

/// The final shifts over `[from, to)`: sorted, non-overlapping, to the minute,
/// adjacent shifts of one user from one source merged. Gaps are left out.
pub fn final_shifts(
    schedule: &Schedule,
    overrides: &[Override],
    from: Timestamp,
    to: Timestamp,
) -> Vec<Shift> {
    let (from, to) = (to_minute(from), to_minute(to));
    if to <= from {
        return Vec::new();
    }
    let layers: Vec<Vec<Span>> = schedule
        .layers
        .iter()
        .map(|l| layer_spans(&schedule.time_zone, l, from, to))
        .collect();
    let overrides: Vec<Span> = overrides
        .iter()
        .map(|o| {
            (
                to_minute(o.starts_at).max(from),
                to_minute(o.ends_at).min(to),
                o.user_id,
            )
        })
        .collect();

    let mut points: Vec<Timestamp> = vec![from, to];
    for (s, e, _) in layers.iter().flatten().chain(overrides.iter()) {
        if s < e {
            points.push(*s);
            points.push(*e);
        }
    }
    points.sort();
    points.dedup();

    let mut out: Vec<Shift> = Vec::new();
    for w in points.windows(2) {
        let (p, q) = (w[0], w[1]);
        let Some((user_id, layer)) = who(&layers, &overrides, p) else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.ends_at == p && last.user_id == user_id && last.layer == layer => {
                last.ends_at = q;
            }
            _ => out.push(Shift {
                user_id,
                starts_at: p,
                ends_at: q,
                layer,
            }),
        }
    }
    out
}

/// Who is on call at `t` (to the minute), and from which layer (`None` = an override).
pub fn on_call_at(
    schedule: &Schedule,
    overrides: &[Override],
    t: Timestamp,
) -> Option<(i64, Option<usize>)> {
    let t = to_minute(t);
    final_shifts(schedule, overrides, t, t + Duration::minutes(1))
        .first()
        .map(|s| (s.user_id, s.layer))
}

// The last override covering `p`, else the highest layer with a span covering it.
fn who(layers: &[Vec<Span>], overrides: &[Span], p: Timestamp) -> Option<(i64, Option<usize>)> {
    if let Some((_, _, u)) = overrides.iter().rev().find(|(s, e, _)| *s <= p && p < *e) {
        return Some((*u, None));
    }
    layers.iter().enumerate().rev().find_map(|(i, spans)| {
        let k = spans.partition_point(|(_, e, _)| *e <= p);
        spans
            .get(k)
            .filter(|(s, _, _)| *s <= p)
            .map(|(_, _, u)| (*u, Some(i)))
    })
}

/// A layer's on-call spans within `[from, to)`: its turns cut by its restrictions.
fn layer_spans(tz: &Tz, layer: &Layer, from: Timestamp, to: Timestamp) -> Vec<Span> {
    let turns = turns(tz, layer, from, to);
    if layer.restrictions.is_empty() {
        return turns;
    }
    let windows = windows(tz, layer, from, to);
    // Both lists are sorted and non-overlapping: intersect them.
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < turns.len() && j < windows.len() {
        let (ts, te, u) = turns[i];
        let (ws, we) = windows[j];
        let (s, e) = (ts.max(ws), te.min(we));
        if s < e {
            out.push((s, e, u));
        }
        if te <= we {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The rotation's turns within `[from, to)` (nothing before the layer's start).
fn turns(tz: &Tz, layer: &Layer, from: Timestamp, to: Timestamp) -> Vec<Span> {
    let n = layer.users.len() as i64;
    let start = to_minute(layer.start);
    let lo = from.max(start);
    if n == 0 || lo >= to {
        return Vec::new();
    }
    // Handoff k (any integer), and the turn number an instant falls in.
    let boundary: Box<dyn Fn(i64) -> Timestamp> = match layer.turn {
        Turn::Hours(h) => {
            let h = i64::from(h.max(1));
            Box::new(move |k| start + Duration::hours(k * h))
        }
        turn => {
            let len = i64::from(turn.days().unwrap_or(1).max(1));
            let d0 = start.with_timezone(tz).date_naive();
            let handoff = layer.handoff;
            let tz = *tz;
            Box::new(move |k| local_start(&tz, d0 + Duration::days(k * len), handoff))
        }
    };
    let turn_of = |t: Timestamp| -> i64 {
        let mut k = match layer.turn {
            Turn::Hours(h) => (t - start)
                .num_minutes()
                .div_euclid(i64::from(h.max(1)) * 60),
            turn => {
                let len = i64::from(turn.days().unwrap_or(1).max(1));
                let d0 = start.with_timezone(tz).date_naive();
                let d = t.with_timezone(tz).date_naive();
                (d - d0).num_days().div_euclid(len)
            }
        };
        while boundary(k) > t {
            k -= 1;
        }
        while boundary(k + 1) <= t {
            k += 1;
        }
        k
    };
    let first = turn_of(start);
    let mut k = turn_of(lo);
    let mut out = Vec::new();
    loop {
        let (s, e) = (boundary(k).max(lo), boundary(k + 1).min(to));
        if s < e {
            let u = layer.users[(k - first).rem_euclid(n) as usize];
            out.push((s, e, u));
        }
        if e >= to {
            break;
        }
        k += 1;
    }
    out
}

/// The layer's restriction windows within `[from, to)`, sorted and merged.
fn windows(tz: &Tz, layer: &Layer, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let first = from.with_timezone(tz).date_naive() - Duration::days(2);
    let last = to.with_timezone(tz).date_naive() + Duration::days(1);
    let mut all = Vec::new();
    let mut d = first;
    while d <= last {
        for r in &layer.restrictions {
            if !r.days.contains(&d.weekday()) {
                continue;
            }
            let end_day = if r.end_time <= r.start_time {
                d + Duration::days(1)
            } else {
                d
            };
            let s = local_start(tz, d, r.start_time).max(from);
            let e = local_start(tz, end_day, r.end_time).min(to);
            if s < e {
                all.push((s, e));
            }
        }
        d += Duration::days(1);
    }
    all.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (s, e) in all {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}
