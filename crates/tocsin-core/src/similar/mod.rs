//! Similar incidents: an in-memory inverted index ranked by BM25F, so that when
//! an incident is declared the past incidents most like it (by title, root
//! cause, description, alert summaries and notes, and by service) show up with
//! how they were resolved.
//!
//! Scoring (BM25F, Robertson & Zaragoza): for a query term t and document d,
//! the field frequencies are combined first, each normalised by its field's
//! length and weighted,
//!
//! ```text
//! tf̃(t,d) = Σ_f w_f · tf_f(t,d) / (1 − b + b · len_f(d) / avglen_f)
//! score(d) = Σ_t idf(t) · tf̃ · (k1 + 1) / (tf̃ + k1)
//! idf(t)   = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
//! ```
//!
//! with k1 = 1.2 and b = 0.75, so a term repeated in the title and the
//! description saturates once rather than counting twice. A document sharing a
//! service with the query has its (non-zero) score multiplied by
//! 1 + `service_boost`: the service sharpens a text match, it does not make one.
//!
//! Query terms are the distinct terms of the query document. Terms in more
//! than `max_df_share` of the documents (and more than `min_df_to_skip` of
//! them) are skipped: their idf is near zero and their postings are the longest,
//! the cost of a query without its benefit. Of the rest, at most
//! `max_query_terms` with the highest idf are used. Terms are summed in
//! lexicographic order, so scores are bit-for-bit the same whatever order
//! documents were added in; ties rank the newer incident (higher id) first.
//!
//! Cost: postings are vectors sorted by document slot holding per-field term
//! frequencies; a query walks the postings of its terms into a dense score
//! array and keeps the top k in a heap.

#[cfg(test)]
mod tests;
pub mod text;

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::Incident;

/// The indexed text fields, each with its own weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The incident's title.
    Title,
    /// Root cause and resolution summary.
    RootCause,
    /// The description.
    Description,
    /// Summaries of its alerts.
    Alerts,
    /// Notes written on it.
    Notes,
}

/// How many fields there are.
pub const FIELD_COUNT: usize = 5;

impl Field {
    /// Every field, in index order.
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::Title,
        Field::RootCause,
        Field::Description,
        Field::Alerts,
        Field::Notes,
    ];
}

/// Ranking parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Term-frequency saturation.
    pub k1: f64,
    /// Length normalisation, 0 (none) to 1 (full).
    pub b: f64,
    /// Weight per field, in [`Field::ALL`] order.
    pub weights: [f64; FIELD_COUNT],
    /// Score multiplier minus one for a shared service.
    pub service_boost: f64,
    /// Skip query terms in more than this share of documents…
    pub max_df_share: f64,
    /// …when they are also in more than this many.
    pub min_df_to_skip: u32,
    /// Most query terms used (the highest idf win).
    pub max_query_terms: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            k1: 1.2,
            b: 0.75,
            // Title > root cause > description, alert summaries, notes.
            weights: [3.0, 2.0, 1.0, 1.0, 1.0],
            service_boost: 0.5,
            max_df_share: 0.2,
            min_df_to_skip: 1000,
            max_query_terms: 64,
        }
    }
}

/// What is indexed of one incident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimilarDoc {
    /// The incident's id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Root cause and resolution summary.
    pub root_cause: String,
    /// Description.
    pub description: String,
    /// Summaries of its alerts.
    pub alert_summaries: Vec<String>,
    /// Bodies of its notes.
    pub notes: Vec<String>,
    /// Affected services.
    pub service_ids: Vec<i64>,
}

impl SimilarDoc {
    /// The document of an incident with its alerts' summaries and notes' bodies.
    pub fn of(incident: &Incident, alert_summaries: Vec<String>, notes: Vec<String>) -> SimilarDoc {
        let root_cause = [&incident.root_cause, &incident.resolution_summary]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        SimilarDoc {
            id: incident.id,
            title: incident.title.clone(),
            root_cause,
            description: incident.description.clone(),
            alert_summaries,
            notes,
            service_ids: incident.service_ids.clone(),
        }
    }

    /// Terms per field, each with its frequency.
    fn analyse(&self) -> [BTreeMap<String, u32>; FIELD_COUNT] {
        let mut out: [BTreeMap<String, u32>; FIELD_COUNT] = Default::default();
        let texts: [Vec<&str>; FIELD_COUNT] = [
            vec![self.title.as_str()],
            vec![self.root_cause.as_str()],
            vec![self.description.as_str()],
            self.alert_summaries.iter().map(String::as_str).collect(),
            self.notes.iter().map(String::as_str).collect(),
        ];
        for (f, parts) in texts.iter().enumerate() {
            for t in parts.iter().flat_map(|p| text::terms(p)) {
                *out[f].entry(t).or_default() += 1;
            }
        }
        out
    }
}

/// One document's occurrence of a term: its slot and the term's frequency per
/// field (saturating at 255, far past where BM25 stops caring).
#[derive(Debug, Clone, Copy)]
struct Posting {
    slot: u32,
    tf: [u8; FIELD_COUNT],
}

#[derive(Debug)]
struct DocInfo {
    id: i64,
    /// Term ids, to find its postings again on removal.
    terms: Box<[u32]>,
    services: Box<[i64]>,
}

/// The index: add, replace and remove documents by incident id; search.
#[derive(Debug, Default)]
pub struct Index {
    config: Config,
    vocab: HashMap<Box<str>, u32>,
    /// Per term id: its postings, by slot.
    postings: Vec<Vec<Posting>>,
    docs: Vec<Option<DocInfo>>,
    /// Field lengths by slot, apart from `docs` so the scoring loop reads a
    /// dense array.
    lens: Vec<[u32; FIELD_COUNT]>,
    slots: HashMap<i64, u32>,
    free: Vec<u32>,
    total_lens: [u64; FIELD_COUNT],
}

impl Index {
    /// An empty index ranking with `config`.
    pub fn new(config: Config) -> Index {
        Index {
            config,
            ..Index::default()
        }
    }

    /// Documents indexed.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether an incident is indexed.
    pub fn contains(&self, id: i64) -> bool {
        self.slots.contains_key(&id)
    }

    /// Adds a document, replacing the one with the same id if there is one.
    pub fn upsert(&mut self, doc: &SimilarDoc) {
        self.remove(doc.id);
        let fields = doc.analyse();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.docs.push(None);
                self.lens.push([0; FIELD_COUNT]);
                (self.docs.len() - 1) as u32
            }
        };
        let mut by_term: BTreeMap<&str, [u8; FIELD_COUNT]> = BTreeMap::new();
        let mut lens = [0u32; FIELD_COUNT];
        for (f, terms) in fields.iter().enumerate() {
            for (t, &n) in terms {
                by_term.entry(t.as_str()).or_default()[f] = n.min(255) as u8;
                lens[f] += n;
            }
        }
        let mut term_ids = Vec::with_capacity(by_term.len());
        for (t, tf) in by_term {
            let id = self.term_id(t);
            let list = &mut self.postings[id as usize];
            let posting = Posting { slot, tf };
            // A new slot is the largest: appended without searching (a search of a
            // long list costs cache misses). A reused one goes in its place.
            match list.last() {
                Some(last) if last.slot > slot => {
                    let at = list.partition_point(|p| p.slot < slot);
                    list.insert(at, posting);
                }
                _ => list.push(posting),
            }
            term_ids.push(id);
        }
        for (total, len) in self.total_lens.iter_mut().zip(lens) {
            *total += u64::from(len);
        }
        let mut services = doc.service_ids.clone();
        services.sort_unstable();
        services.dedup();
        self.lens[slot as usize] = lens;
        self.docs[slot as usize] = Some(DocInfo {
            id: doc.id,
            terms: term_ids.into_boxed_slice(),
            services: services.into_boxed_slice(),
        });
        self.slots.insert(doc.id, slot);
    }

    /// Removes an incident's document; false if it was not indexed.
    pub fn remove(&mut self, id: i64) -> bool {
        let Some(slot) = self.slots.remove(&id) else {
            return false;
        };
        let Some(info) = self.docs[slot as usize].take() else {
            return false;
        };
        for &t in info.terms.iter() {
            let list = &mut self.postings[t as usize];
            if let Ok(i) = list.binary_search_by_key(&slot, |p| p.slot) {
                list.remove(i);
            }
        }
        let lens = std::mem::take(&mut self.lens[slot as usize]);
        for (total, len) in self.total_lens.iter_mut().zip(lens) {
            *total -= u64::from(len);
        }
        self.free.push(slot);
        true
    }

    fn term_id(&mut self, t: &str) -> u32 {
        if let Some(&id) = self.vocab.get(t) {
            return id;
        }
        let id = self.postings.len() as u32;
        self.vocab.insert(t.into(), id);
        self.postings.push(Vec::new());
        id
    }

    /// The `k` indexed incidents most similar to `query`, best first, with their
    /// scores; `exclude` (usually the query's own incident) is never returned.
    pub fn search(&self, query: &SimilarDoc, k: usize, exclude: Option<i64>) -> Vec<(i64, f64)> {
        let n = self.slots.len();
        if k == 0 || n == 0 {
            return Vec::new();
        }
        let c = &self.config;
        let avg: [f64; FIELD_COUNT] = std::array::from_fn(|f| self.total_lens[f] as f64 / n as f64);
        let mut scores = vec![0.0f64; self.docs.len()];
        let mut touched: Vec<u32> = Vec::new();
        for (term, idf) in self.query_terms(query) {
            // Postings only ever name live slots: removal takes them out.
            for p in &self.postings[term as usize] {
                let lens = &self.lens[p.slot as usize];
                let mut tf = 0.0;
                for f in 0..FIELD_COUNT {
                    if p.tf[f] > 0 {
                        let norm = 1.0 - c.b + c.b * f64::from(lens[f]) / avg[f];
                        tf += c.weights[f] * f64::from(p.tf[f]) / norm;
                    }
                }
                let s = &mut scores[p.slot as usize];
                if *s == 0.0 {
                    touched.push(p.slot);
                }
                *s += idf * tf * (c.k1 + 1.0) / (tf + c.k1);
            }
        }
        let mut services = query.service_ids.clone();
        services.sort_unstable();
        let mut heap: BinaryHeap<Reverse<Hit>> = BinaryHeap::with_capacity(k + 1);
        for slot in touched {
            let Some(doc) = &self.docs[slot as usize] else {
                continue;
            };
            if Some(doc.id) == exclude {
                continue;
            }
            let mut score = scores[slot as usize];
            if doc
                .services
                .iter()
                .any(|s| services.binary_search(s).is_ok())
            {
                score *= 1.0 + c.service_boost;
            }
            let hit = Hit { score, id: doc.id };
            if heap.len() < k {
                heap.push(Reverse(hit));
            } else if heap.peek().is_some_and(|Reverse(worst)| hit > *worst) {
                heap.pop();
                heap.push(Reverse(hit));
            }
        }
        let mut hits: Vec<Hit> = heap.into_iter().map(|Reverse(h)| h).collect();
        hits.sort_by(|a, b| b.cmp(a));
        hits.into_iter().map(|h| (h.id, h.score)).collect()
    }

    /// The query's terms with their idf, in lexicographic order (see the module
    /// documentation for which are skipped).
    fn query_terms(&self, query: &SimilarDoc) -> Vec<(u32, f64)> {
        let n = self.slots.len() as f64;
        let c = &self.config;
        let mut terms: BTreeMap<&str, (u32, f64)> = BTreeMap::new();
        let analysed = query.analyse();
        for t in analysed.iter().flat_map(|f| f.keys()) {
            let Some((text, &id)) = self.vocab.get_key_value(t.as_str()) else {
                continue;
            };
            let df = self.postings[id as usize].len();
            let common = df as f64 > c.max_df_share * n && df > c.min_df_to_skip as usize;
            if df == 0 || common {
                continue;
            }
            let idf = (1.0 + (n - df as f64 + 0.5) / (df as f64 + 0.5)).ln();
            terms.insert(text, (id, idf));
        }
        let mut kept: Vec<(&str, (u32, f64))> = terms.into_iter().collect();
        if kept.len() > c.max_query_terms {
            // Highest idf first (rarest terms), ties by text; then back to text order.
            kept.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1).then(a.0.cmp(b.0)));
            kept.truncate(c.max_query_terms);
            kept.sort_by(|a, b| a.0.cmp(b.0));
        }
        kept.into_iter().map(|(_, v)| v).collect()
    }
}

/// A scored document; orders by score, then by id (newer wins a tie).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Hit {
    score: f64,
    id: i64,
}

impl Eq for Hit {}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.id.cmp(&other.id))
    }
}
