//! Three-way merge of postmortem revisions, by line: two people who edited
//! different parts of the same revision both keep their edits; where their
//! edits touch the same or adjacent lines differently, the merge reports the
//! regions instead of choosing, so nothing is silently overwritten.
//!
//! Each side is diffed against the common base (Myers' O(ND) algorithm); a
//! region changed by only one side takes that side's lines, a region changed
//! identically by both takes them once. Edits must be separated by at least one
//! line neither side changed to merge (as in diff3 and git): adjacent edits
//! conflict. Pathological diffs (more than [`MAX_EDITS`] edits between common
//! prefix and suffix) fall back to "everything in between changed", which can
//! only add conflicts, never lose an edit.

use std::ops::Range;

use serde::Serialize;

/// Most edits the diff searches for before treating the middle as rewritten.
pub const MAX_EDITS: usize = 2000;

/// Line ranges (0-based, end exclusive) of one conflicting region in each version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictRange {
    /// In the common base.
    pub base: Range<usize>,
    /// In the version being saved.
    pub mine: Range<usize>,
    /// In the version saved meanwhile.
    pub theirs: Range<usize>,
}

/// Concurrent edits that overlap: the regions to reconcile by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("the revision was changed meanwhile in {} overlapping place(s)", .ranges.len())]
pub struct Conflict {
    /// Each overlapping region.
    pub ranges: Vec<ConflictRange>,
}

/// A changed region: `base` lines replaced by `other` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hunk {
    base: Range<usize>,
    other: Range<usize>,
}

/// Merges `mine` and `theirs`, both edited from `base`.
pub fn merge(base: &str, mine: &str, theirs: &str) -> Result<String, Conflict> {
    let (b, m, t) = (lines(base), lines(mine), lines(theirs));
    let mut hunks: Vec<(bool, Hunk)> = diff(&b, &m).into_iter().map(|h| (true, h)).collect();
    hunks.extend(diff(&b, &t).into_iter().map(|h| (false, h)));
    hunks.sort_by_key(|(_, h)| (h.base.start, h.base.end));
    let mut out = String::with_capacity(mine.len().max(theirs.len()));
    let mut conflicts = Vec::new();
    // Net lines added by each side's hunks so far (mine, theirs).
    let (mut shift_m, mut shift_t) = (0isize, 0isize);
    let mut copied = 0;
    let mut i = 0;
    while i < hunks.len() {
        let (lo, mut hi) = (hunks[i].1.base.start, hunks[i].1.base.end);
        let mut j = i + 1;
        // Overlapping or touching hunks form one region.
        while j < hunks.len() && hunks[j].1.base.start <= hi {
            hi = hi.max(hunks[j].1.base.end);
            j += 1;
        }
        let group = &hunks[i..j];
        let growth = |mine: bool| -> isize {
            group
                .iter()
                .filter(|(side, _)| *side == mine)
                .map(|(_, h)| h.other.len() as isize - h.base.len() as isize)
                .sum()
        };
        let (grow_m, grow_t) = (growth(true), growth(false));
        let at = |p: usize, shift: isize| (p as isize + shift) as usize;
        let mine_r = at(lo, shift_m)..at(hi, shift_m + grow_m);
        let theirs_r = at(lo, shift_t)..at(hi, shift_t + grow_t);
        let (by_m, by_t) = (
            group.iter().any(|(s, _)| *s),
            group.iter().any(|(s, _)| !*s),
        );
        b[copied..lo].iter().for_each(|l| out.push_str(l));
        if by_m && by_t && m[mine_r.clone()] != t[theirs_r.clone()] {
            conflicts.push(ConflictRange {
                base: lo..hi,
                mine: mine_r,
                theirs: theirs_r,
            });
        } else if by_m {
            m[mine_r].iter().for_each(|l| out.push_str(l));
        } else {
            t[theirs_r].iter().for_each(|l| out.push_str(l));
        }
        copied = hi;
        shift_m += grow_m;
        shift_t += grow_t;
        i = j;
    }
    b[copied..].iter().for_each(|l| out.push_str(l));
    if conflicts.is_empty() {
        Ok(out)
    } else {
        Err(Conflict { ranges: conflicts })
    }
}

/// Lines with their endings, so a missing final newline survives the merge.
fn lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

/// The changed regions turning `a` into `b`, in order, separated by unchanged lines.
fn diff(a: &[&str], b: &[&str]) -> Vec<Hunk> {
    let pre = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let matches = myers(ma, mb).unwrap_or_default();
    let mut hunks = Vec::new();
    let (mut x, mut y) = (0, 0);
    for (mx, my) in matches.into_iter().chain([(ma.len(), mb.len())]) {
        if mx > x || my > y {
            hunks.push(Hunk {
                base: pre + x..pre + mx,
                other: pre + y..pre + my,
            });
        }
        (x, y) = (mx + 1, my + 1);
    }
    hunks
}

/// The matched line pairs of a shortest edit script, ascending; `None` when it
/// needs more than [`MAX_EDITS`] edits.
fn myers(a: &[&str], b: &[&str]) -> Option<Vec<(usize, usize)>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (n + m).min(MAX_EDITS as isize);
    let off = max + 1;
    let mut v = vec![0isize; (2 * max + 3) as usize];
    // trace[d] holds v[-d-1 ..= d+1] as it was before round d.
    let mut trace: Vec<Vec<isize>> = Vec::new();
    for d in 0..=max {
        trace.push(v[(off - d - 1) as usize..=(off + d + 1) as usize].to_vec());
        for k in (-d..=d).step_by(2) {
            let down = k == -d || (k != d && v[(off + k - 1) as usize] < v[(off + k + 1) as usize]);
            let mut x = if down {
                v[(off + k + 1) as usize]
            } else {
                v[(off + k - 1) as usize] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[(off + k) as usize] = x;
            if x >= n && y >= m {
                return Some(backtrack(&trace, n, m));
            }
        }
    }
    None
}

fn backtrack(trace: &[Vec<isize>], n: isize, m: isize) -> Vec<(usize, usize)> {
    let mut matches = Vec::new();
    let (mut x, mut y) = (n, m);
    for (d, v) in trace.iter().enumerate().rev() {
        let d = d as isize;
        // v is stored from index -d-1.
        let at = |k: isize| v[(k + d + 1) as usize];
        let k = x - y;
        let down = k == -d || (k != d && at(k - 1) < at(k + 1));
        let prev_k = if down { k + 1 } else { k - 1 };
        let prev_x = at(prev_k);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            matches.push((x as usize, y as usize));
        }
        if d > 0 {
            (x, y) = (prev_x, prev_y);
        }
    }
    matches.reverse();
    matches
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BASE: &str = "# Postmortem\n\n## Summary\n\nDB down.\n\n## Root causes\n\nTBD\n\n## Action items\n\n- none\n";

    #[test]
    fn edits_of_different_sections_both_survive() {
        let mine = BASE.replace("DB down.", "The primary database ran out of disk.");
        let theirs = BASE.replace("- none", "- alert on disk at 80 %\n- rotate logs");
        let merged = merge(BASE, &mine, &theirs).unwrap();
        assert_eq!(
            merged,
            "# Postmortem\n\n## Summary\n\nThe primary database ran out of disk.\n\n## Root causes\n\nTBD\n\n\
             ## Action items\n\n- alert on disk at 80 %\n- rotate logs\n"
        );
        // Order of the two sides does not matter.
        assert_eq!(merge(BASE, &theirs, &mine).unwrap(), merged);
    }

    #[test]
    fn overlapping_edits_are_reported_with_their_lines() {
        let mine = BASE.replace("TBD", "Log rotation was disabled.");
        let theirs = BASE.replace("TBD", "Disk filled up.\nNobody noticed.");
        let c = merge(BASE, &mine, &theirs).unwrap_err();
        // "TBD" is line 8 (0-based) of the base; theirs replaced it with two lines.
        assert_eq!(
            c.ranges,
            [ConflictRange {
                base: 8..9,
                mine: 8..9,
                theirs: 8..10
            }]
        );
        assert_eq!(
            c.to_string(),
            "the revision was changed meanwhile in 1 overlapping place(s)"
        );
    }

    #[test]
    fn identical_and_one_sided_edits_merge() {
        let edit = BASE.replace("TBD", "Disk full.");
        assert_eq!(merge(BASE, &edit, &edit).unwrap(), edit);
        assert_eq!(merge(BASE, &edit, BASE).unwrap(), edit);
        assert_eq!(merge(BASE, BASE, &edit).unwrap(), edit);
    }

    #[test]
    fn adjacent_edits_and_same_place_insertions_conflict() {
        let b = "a\nb\nc\n";
        // Lines a and b are adjacent: no unchanged line between the edits.
        assert!(merge(b, "A\nb\nc\n", "a\nB\nc\n").is_err());
        // Both insert different lines after b.
        let c = merge(b, "a\nb\nx\nc\n", "a\nb\ny\nc\n").unwrap_err();
        assert_eq!(c.ranges[0].base, 2..2);
        // One deletes a line the other edits.
        assert!(merge(b, "a\nc\n", "a\nB\nc\n").is_err());
        // Separated by an unchanged line: both kept.
        assert_eq!(merge(b, "A\nb\nc\n", "a\nb\nC\n").unwrap(), "A\nb\nC\n");
        // A missing final newline is an edit like any other.
        assert_eq!(merge(b, "a\nb\nc", b).unwrap(), "a\nb\nc");
    }

    fn apply(a: &[&str], b: &[&str], hunks: &[Hunk]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        for h in hunks {
            out.extend(a[at..h.base.start].iter().map(|s| s.to_string()));
            out.extend(b[h.other.clone()].iter().map(|s| s.to_string()));
            at = h.base.end;
        }
        out.extend(a[at..].iter().map(|s| s.to_string()));
        out
    }

    fn doc() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(
            prop_oneof!["a\n", "b\n", "c\n", "\n"].prop_map(String::from),
            0..30,
        )
    }

    proptest! {
        #[test]
        fn diff_turns_one_into_the_other(a in doc(), b in doc()) {
            let (la, lb): (Vec<&str>, Vec<&str>) = (a.iter().map(String::as_str).collect(), b.iter().map(String::as_str).collect());
            let hunks = diff(&la, &lb);
            prop_assert_eq!(apply(&la, &lb, &hunks), b.clone());
            // Hunks are ordered and separated by at least one unchanged line.
            prop_assert!(hunks.windows(2).all(|w| w[0].base.end < w[1].base.start && w[0].other.end < w[1].other.start));
        }

        #[test]
        fn merging_with_an_unchanged_side_gives_the_other(base in doc(), edit in doc()) {
            let (base, edit) = (base.concat(), edit.concat());
            prop_assert_eq!(merge(&base, &edit, &base).unwrap(), edit.clone());
            prop_assert_eq!(merge(&base, &base, &edit).unwrap(), edit.clone());
            prop_assert_eq!(merge(&base, &edit, &edit).unwrap(), edit);
        }

        #[test]
        fn edits_of_separate_halves_both_survive(top in doc(), bottom in doc(), new_top in doc(), new_bottom in doc()) {
            // A fence line neither side touches separates the halves.
            let fence = "=== fence ===\n";
            let base = format!("{}{fence}{}", top.concat(), bottom.concat());
            let mine = format!("{}{fence}{}", new_top.concat(), bottom.concat());
            let theirs = format!("{}{fence}{}", top.concat(), new_bottom.concat());
            let want = format!("{}{fence}{}", new_top.concat(), new_bottom.concat());
            prop_assert_eq!(merge(&base, &mine, &theirs).unwrap(), want);
        }
    }
}
