//! On-call schedules: who is on call when, as a pure function of a schedule, its
//! overrides and a time range.
//!
//! A schedule has an IANA time zone and ordered layers; a later layer takes
//! precedence over an earlier one wherever it has someone on call. A layer is a
//! rotation: users take turns in order from the layer's `start`, the user at
//! index 0 holding the turn that contains `start`. Calendar turns (daily, weekly,
//! every n days) hand off at the local `handoff` time in the schedule's zone, so a
//! 09:00 handoff stays at 09:00 local across daylight-saving changes (the turn is
//! then 23 or 25 hours long); the handoff days are counted from the local date of
//! `start`. `Hours(n)` turns are fixed elapsed durations from `start` and ignore
//! `handoff`. A handoff time the clocks jump over happens when the jump ends; one
//! that exists twice happens at the first.
//!
//! Restrictions limit a layer to time-of-day windows on some days of the week, in
//! the schedule's zone: outside them the layer has nobody on call. A window whose
//! end is not after its start crosses midnight into the next day. A window is the
//! span between the instants its local start and end name (resolved like
//! handoffs), so a window is one contiguous interval even on the night the clocks
//! go back.
//!
//! Restrictions have no zone of their own on purpose: a follow-the-sun schedule is
//! modelled as layers whose windows tile the day in the schedule's zone (e.g.
//! 00:00–08:00, 08:00–16:00, 16:00–24:00), which can never leave a gap or overlap
//! when some office's clocks change; windows in each office's own zone would drift
//! against each other by an hour for the weeks between different DST dates.
//!
//! Overrides take precedence over every layer; where overrides overlap, the one
//! created last (later in the slice) wins. All instants are truncated to the
//! minute.

use chrono::{NaiveTime, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::maintenance::{day_str, parse_day, parse_time_of_day, parse_time_zone};
use crate::time::Timestamp;
use crate::Invalid;

mod compute;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

pub use compute::{final_shifts, on_call_at};

/// Most layers a schedule may have.
pub const MAX_LAYERS: usize = 20;
/// Most users in one layer's rotation.
pub const MAX_USERS: usize = 200;
/// Most restrictions on one layer.
pub const MAX_RESTRICTIONS: usize = 28;
/// Longest turn in hours (a year).
pub const MAX_TURN_HOURS: u32 = 366 * 24;
/// Longest turn in days (a year).
pub const MAX_TURN_DAYS: u32 = 366;

/// An on-call schedule: a zone and ordered layers (later = higher precedence).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Zone the handoffs and restrictions are in.
    pub time_zone: Tz,
    /// Layers, lowest precedence first.
    pub layers: Vec<Layer>,
}

/// One layer: a rotation of users taking turns, optionally restricted.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Name shown for the layer.
    pub name: String,
    /// The rotation, in turn order (a user may appear more than once).
    pub users: Vec<i64>,
    /// When the rotation starts; `users[0]` holds the turn containing it.
    pub start: Timestamp,
    /// How long each turn is.
    pub turn: Turn,
    /// Local time of day calendar turns hand off at (ignored by `Hours`).
    pub handoff: NaiveTime,
    /// Windows the layer is limited to; empty = always.
    pub restrictions: Vec<Restriction>,
}

/// The length of one turn of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// One calendar day, handing off at the local handoff time.
    Daily,
    /// Seven calendar days, handing off on the weekday of the layer's start.
    Weekly,
    /// A fixed number of elapsed hours from the layer's start.
    Hours(u32),
    /// A number of calendar days, handing off at the local handoff time.
    Days(u32),
}

impl Turn {
    /// Calendar days per turn, or `None` for elapsed-hour turns.
    pub fn days(self) -> Option<u32> {
        match self {
            Turn::Daily => Some(1),
            Turn::Weekly => Some(7),
            Turn::Days(n) => Some(n),
            Turn::Hours(_) => None,
        }
    }
}

/// A local time-of-day window on some days of the week (crosses midnight when
/// `end_time` is not after `start_time`).
#[derive(Debug, Clone, PartialEq)]
pub struct Restriction {
    /// Days the window starts on.
    pub days: Vec<Weekday>,
    /// Local start of the window.
    pub start_time: NaiveTime,
    /// Local end of the window (next day when not after `start_time`).
    pub end_time: NaiveTime,
}

/// A user covering a time range, above every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Override {
    /// Who is on call.
    pub user_id: i64,
    /// Start (inclusive).
    pub starts_at: chrono::DateTime<chrono::Utc>,
    /// End (exclusive).
    pub ends_at: chrono::DateTime<chrono::Utc>,
}

/// A span of time one user is on call, and where that comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Shift {
    /// Who is on call.
    pub user_id: i64,
    /// Start (inclusive).
    pub starts_at: chrono::DateTime<chrono::Utc>,
    /// End (exclusive).
    pub ends_at: chrono::DateTime<chrono::Utc>,
    /// Index of the layer it comes from; `None` for an override.
    pub layer: Option<usize>,
}

impl Schedule {
    /// The schedule as written (the inverse of [`ScheduleParts::parse`]).
    pub fn parts(&self) -> ScheduleParts {
        let hm = |t: NaiveTime| t.format("%H:%M").to_string();
        ScheduleParts {
            time_zone: self.time_zone.name().to_string(),
            layers: self
                .layers
                .iter()
                .map(|l| {
                    let (turn, turn_length) = match l.turn {
                        Turn::Daily => ("daily", None),
                        Turn::Weekly => ("weekly", None),
                        Turn::Hours(n) => ("hours", Some(i64::from(n))),
                        Turn::Days(n) => ("days", Some(i64::from(n))),
                    };
                    LayerParts {
                        name: l.name.clone(),
                        users: l.users.clone(),
                        start: l.start,
                        turn: turn.to_string(),
                        turn_length,
                        handoff: hm(l.handoff),
                        restrictions: l
                            .restrictions
                            .iter()
                            .map(|r| RestrictionParts {
                                days: Some(
                                    r.days.iter().map(|d| day_str(*d).to_string()).collect(),
                                ),
                                start_time: hm(r.start_time),
                                end_time: hm(r.end_time),
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }

    /// Checks the schedule is sane, naming the field at fault: everything
    /// [`Schedule::validate_computable`] checks, and that nothing within a layer
    /// overlaps or repeats by mistake (see [`Schedule::validate_distinct`]).
    pub fn validate(&self) -> Result<(), Invalid> {
        self.validate_computable()?;
        self.validate_distinct()
    }

    /// Checks what computing shifts relies on (layers, users, turns, windows).
    pub fn validate_computable(&self) -> Result<(), Invalid> {
        if self.layers.is_empty() {
            return Err(Invalid::new(
                "layers",
                "a schedule needs at least one layer",
            ));
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(Invalid::new(
                "layers",
                format!("at most {MAX_LAYERS} layers"),
            ));
        }
        for (i, l) in self.layers.iter().enumerate() {
            l.validate(&format!("layers[{i}]"))?;
        }
        Ok(())
    }

    /// Checks the overlaps that are mistakes rather than precedence: two layers
    /// with one name, one user taking two turns in a row, two windows of one
    /// layer covering the same minutes. Layers overlapping each other is not one
    /// of them: a higher layer taking over is the point of layers.
    pub fn validate_distinct(&self) -> Result<(), Invalid> {
        for (j, l) in self.layers.iter().enumerate() {
            let name = l.name.trim();
            if let Some(i) = self.layers[..j]
                .iter()
                .position(|o| o.name.trim().eq_ignore_ascii_case(name))
            {
                return Err(Invalid::new(
                    format!("layers[{j}].name"),
                    format!("layers[{i}] is also named `{name}`: layer names are unique"),
                ));
            }
        }
        for (i, l) in self.layers.iter().enumerate() {
            l.validate_distinct(&format!("layers[{i}]"))?;
        }
        Ok(())
    }
}

impl Layer {
    fn validate(&self, at: &str) -> Result<(), Invalid> {
        if self.name.trim().is_empty() {
            return Err(Invalid::new(format!("{at}.name"), "must not be empty"));
        }
        if self.users.is_empty() {
            return Err(Invalid::new(
                format!("{at}.users"),
                "a rotation needs at least one user",
            ));
        }
        if self.users.len() > MAX_USERS {
            return Err(Invalid::new(
                format!("{at}.users"),
                format!("at most {MAX_USERS} users in a rotation"),
            ));
        }
        match self.turn {
            Turn::Hours(0) | Turn::Days(0) => {
                return Err(Invalid::new(
                    format!("{at}.turn"),
                    "a turn must be at least one hour or day long",
                ))
            }
            Turn::Hours(n) if n > MAX_TURN_HOURS => {
                return Err(Invalid::new(
                    format!("{at}.turn"),
                    format!("a turn is at most {MAX_TURN_HOURS} hours"),
                ))
            }
            Turn::Days(n) if n > MAX_TURN_DAYS => {
                return Err(Invalid::new(
                    format!("{at}.turn"),
                    format!("a turn is at most {MAX_TURN_DAYS} days"),
                ))
            }
            _ => {}
        }
        if self.handoff.second() != 0 || self.handoff.nanosecond() != 0 {
            return Err(Invalid::new(
                format!("{at}.handoff"),
                "a handoff is a whole minute",
            ));
        }
        if self.restrictions.len() > MAX_RESTRICTIONS {
            return Err(Invalid::new(
                format!("{at}.restrictions"),
                format!("at most {MAX_RESTRICTIONS} restrictions"),
            ));
        }
        for (j, r) in self.restrictions.iter().enumerate() {
            let at = format!("{at}.restrictions[{j}]");
            if r.days.is_empty() {
                return Err(Invalid::new(format!("{at}.days"), "name at least one day"));
            }
            if r.start_time == r.end_time {
                return Err(Invalid::new(
                    format!("{at}.start_time"),
                    "start and end are equal: the window would be empty (or the whole day: leave the restriction out)",
                ));
            }
            for (field, t) in [("start_time", r.start_time), ("end_time", r.end_time)] {
                if t.second() != 0 || t.nanosecond() != 0 {
                    return Err(Invalid::new(format!("{at}.{field}"), "a whole minute"));
                }
            }
        }
        Ok(())
    }
}

impl Layer {
    fn validate_distinct(&self, at: &str) -> Result<(), Invalid> {
        let n = self.users.len();
        for k in 1..n {
            if self.users[k] == self.users[k - 1] {
                return Err(Invalid::new(
                    format!("{at}.users[{k}]"),
                    format!(
                        "user {} is also users[{}]: one user cannot take two turns in a row (list them once and lengthen the turn)",
                        self.users[k],
                        k - 1
                    ),
                ));
            }
        }
        // The rotation wraps around: [A, B, A] hands A two turns in a row, as [A, A, B] does.
        if n > 1 && self.users[n - 1] == self.users[0] {
            return Err(Invalid::new(
                format!("{at}.users[{}]", n - 1),
                format!(
                    "user {} is also users[0]: when the rotation starts over they would take two turns in a row",
                    self.users[0]
                ),
            ));
        }
        for (j, r) in self.restrictions.iter().enumerate() {
            for (i, other) in self.restrictions[..j].iter().enumerate() {
                if let Some(day) = r.overlap(other) {
                    return Err(Invalid::new(
                        format!("{at}.restrictions[{j}]"),
                        format!(
                            "its window on {} overlaps {at}.restrictions[{i}] ({}–{}): merge them or make them meet",
                            day_str(day),
                            other.start_time.format("%H:%M"),
                            other.end_time.format("%H:%M"),
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

const MINUTES_PER_DAY: i64 = 24 * 60;
const MINUTES_PER_WEEK: i64 = 7 * MINUTES_PER_DAY;

impl Restriction {
    /// The windows as `[start, start + length)` in minutes of the local week
    /// (Monday 00:00 is 0); a window from Sunday night runs past the week's end.
    fn windows(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        let minute = |t: NaiveTime| i64::from(t.hour()) * 60 + i64::from(t.minute());
        let (start, end) = (minute(self.start_time), minute(self.end_time));
        let length = if end > start {
            end - start
        } else {
            end + MINUTES_PER_DAY - start
        };
        self.days.iter().map(move |d| {
            (
                i64::from(d.num_days_from_monday()) * MINUTES_PER_DAY + start,
                length,
            )
        })
    }

    /// The first day one of this restriction's windows starts on that shares a
    /// minute with one of `other`'s, in local wall-clock time.
    fn overlap(&self, other: &Restriction) -> Option<Weekday> {
        self.days
            .iter()
            .zip(self.windows())
            .find(|(_, (s1, l1))| {
                // Windows are under a day, so on the week's circle two overlap
                // exactly when one starts inside the other.
                other.windows().any(|(s2, l2)| {
                    (s2 - s1).rem_euclid(MINUTES_PER_WEEK) < *l1
                        || (s1 - s2).rem_euclid(MINUTES_PER_WEEK) < l2
                })
            })
            .map(|(d, _)| *d)
    }
}

/// Checks overrides are sane, naming the field at fault (`overrides[i].ends_at`).
pub fn validate_overrides(overrides: &[Override]) -> Result<(), Invalid> {
    for (i, o) in overrides.iter().enumerate() {
        if o.ends_at <= o.starts_at {
            return Err(Invalid::new(
                format!("overrides[{i}].ends_at"),
                "must be after starts_at",
            ));
        }
    }
    Ok(())
}

/// A schedule as written: zone and times as strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleParts {
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Layers, lowest precedence first.
    pub layers: Vec<LayerParts>,
}

/// A layer as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LayerParts {
    /// Name shown for the layer.
    pub name: String,
    /// User ids in turn order.
    pub users: Vec<i64>,
    /// When the rotation starts.
    pub start: chrono::DateTime<chrono::Utc>,
    /// `daily`, `weekly`, `hours` or `days`.
    pub turn: String,
    /// Number of hours or days per turn (for `hours` and `days`).
    #[serde(default)]
    pub turn_length: Option<i64>,
    /// Local handoff time `HH:MM` (calendar turns).
    pub handoff: String,
    /// Windows the layer is limited to; none = always.
    #[serde(default)]
    pub restrictions: Vec<RestrictionParts>,
}

/// A restriction as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RestrictionParts {
    /// Days it starts on (`mon` … `sun`); none = every day.
    #[serde(default)]
    pub days: Option<Vec<String>>,
    /// Local start `HH:MM`.
    pub start_time: String,
    /// Local end `HH:MM` (next day when not after the start).
    pub end_time: String,
}

const ALL_DAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

impl ScheduleParts {
    /// Parses and validates the parts into a schedule, naming the field at fault.
    pub fn parse(&self) -> Result<Schedule, Invalid> {
        let schedule = self.parse_stored()?;
        schedule.validate_distinct()?;
        Ok(schedule)
    }

    /// Parses parts that were checked when they were written. Only what
    /// computing shifts relies on is checked again, so a schedule stored before
    /// a later check (such as [`Schedule::validate_distinct`]) still computes;
    /// it meets that check the next time its layers are changed.
    pub fn parse_stored(&self) -> Result<Schedule, Invalid> {
        let time_zone = parse_time_zone("time_zone", &self.time_zone)?;
        if self.layers.len() > MAX_LAYERS {
            return Err(Invalid::new(
                "layers",
                format!("at most {MAX_LAYERS} layers"),
            ));
        }
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| l.parse(&format!("layers[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let schedule = Schedule { time_zone, layers };
        schedule.validate_computable()?;
        Ok(schedule)
    }
}

impl LayerParts {
    fn parse(&self, at: &str) -> Result<Layer, Invalid> {
        let length = |unit: &str| -> Result<u32, Invalid> {
            let field = format!("{at}.turn_length");
            let n = self.turn_length.ok_or_else(|| {
                Invalid::new(&field, format!("is required for turns of `{unit}`"))
            })?;
            if n <= 0 {
                return Err(Invalid::new(&field, "must be at least 1"));
            }
            u32::try_from(n).map_err(|_| Invalid::new(&field, "is too long"))
        };
        let turn = match self.turn.trim().to_ascii_lowercase().as_str() {
            "daily" => Turn::Daily,
            "weekly" => Turn::Weekly,
            "hours" => Turn::Hours(length("hours")?),
            "days" => Turn::Days(length("days")?),
            other => {
                return Err(Invalid::new(
                    format!("{at}.turn"),
                    format!("`{other}` is not a turn (daily, weekly, hours, days)"),
                ))
            }
        };
        let restrictions = self
            .restrictions
            .iter()
            .enumerate()
            .map(|(j, r)| r.parse(&format!("{at}.restrictions[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Layer {
            name: self.name.clone(),
            users: self.users.clone(),
            start: self.start,
            turn,
            handoff: parse_time_of_day(&format!("{at}.handoff"), &self.handoff)?,
            restrictions,
        })
    }
}

impl RestrictionParts {
    fn parse(&self, at: &str) -> Result<Restriction, Invalid> {
        let days = match &self.days {
            None => ALL_DAYS.to_vec(),
            Some(ds) => ds
                .iter()
                .enumerate()
                .map(|(k, d)| parse_day(&format!("{at}.days[{k}]"), d))
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(Restriction {
            days,
            start_time: parse_time_of_day(&format!("{at}.start_time"), &self.start_time)?,
            end_time: parse_time_of_day(&format!("{at}.end_time"), &self.end_time)?,
        })
    }
}
