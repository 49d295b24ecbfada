//! BM25F scores computed by hand on tiny corpora, incremental updates, order
//! independence, and a timing smoke over 100,000 documents.

use proptest::prelude::*;

use super::*;

fn titled(id: i64, title: &str) -> SimilarDoc {
    SimilarDoc {
        id,
        title: title.into(),
        ..Default::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn bm25_by_hand_on_titles() {
    let mut idx = Index::new(Config::default());
    idx.upsert(&titled(1, "Database timeout")); // databas, timeout: length 2
    idx.upsert(&titled(2, "Database disk full")); // databas, disk, full: 3
    idx.upsert(&titled(3, "Checkout timeout errors")); // checkout, timeout, error: 3
    let hits = idx.search(&titled(0, "timeouts"), 10, None);
    // N = 3, df(timeout) = 2: idf = ln(1 + (3 − 2 + 0.5)/(2 + 0.5)) = ln 1.6.
    // Average title length 8/3; title weight 3; k1 = 1.2, b = 0.75.
    // Doc 1: norm = 0.25 + 0.75·2/(8/3) = 0.8125; tf̃ = 3/0.8125 = 48/13;
    //        score = ln 1.6 · (48/13 · 2.2)/(48/13 + 1.2) = ln 1.6 · 105.6/63.6 = ln 1.6 · 88/53.
    // Doc 3: norm = 0.25 + 0.75·3/(8/3) = 35/32; tf̃ = 96/35;
    //        score = ln 1.6 · (96/35 · 2.2)/(96/35 + 1.2) = ln 1.6 · 211.2/138 = ln 1.6 · 176/115.
    let ln16 = 1.6f64.ln();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].0, 1);
    assert!(close(hits[0].1, ln16 * 88.0 / 53.0), "{hits:?}");
    assert_eq!(hits[1].0, 3);
    assert!(close(hits[1].1, ln16 * 176.0 / 115.0), "{hits:?}");
}

#[test]
fn bm25_by_hand_across_fields_with_a_shared_service() {
    let mut idx = Index::new(Config::default());
    idx.upsert(&SimilarDoc {
        id: 10,
        title: "Disk full".into(),
        root_cause: "log rotation disabled".into(),
        service_ids: vec![1],
        ..Default::default()
    });
    idx.upsert(&SimilarDoc {
        id: 11,
        title: "API slow".into(),
        description: "disk full on db host".into(),
        service_ids: vec![2],
        ..Default::default()
    });
    let query = SimilarDoc {
        id: 12,
        title: "disk full".into(),
        service_ids: vec![1, 3],
        ..Default::default()
    };
    let hits = idx.search(&query, 5, None);
    // N = 2; "disk" and "full" are in both: idf = ln(1 + 0.5/2.5) = ln 1.2 each.
    // Average lengths: title (2 + 2)/2 = 2, description (0 + 4)/2 = 2 ("on" is a stop word).
    // Doc 10, per term: title norm 0.25 + 0.75·2/2 = 1, tf̃ = 3·1 = 3,
    //   ln 1.2 · 3·2.2/(3 + 1.2) = ln 1.2 · 11/7; two terms 22/7 ln 1.2; shared
    //   service 1: × 1.5 → 33/7 ln 1.2.
    // Doc 11, per term: description norm 0.25 + 0.75·4/2 = 1.75, tf̃ = 1/1.75 = 4/7,
    //   ln 1.2 · (4/7·2.2)/(4/7 + 1.2) = ln 1.2 · 8.8/12.4 = ln 1.2 · 22/31; two terms 44/31 ln 1.2.
    let ln12 = 1.2f64.ln();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].0, 10);
    assert!(close(hits[0].1, ln12 * 33.0 / 7.0), "{hits:?}");
    assert_eq!(hits[1].0, 11);
    assert!(close(hits[1].1, ln12 * 44.0 / 31.0), "{hits:?}");
    // A shared service alone is no match: a query of other words finds nothing.
    let other = SimilarDoc {
        title: "certificate expired".into(),
        service_ids: vec![1],
        ..Default::default()
    };
    assert!(idx.search(&other, 5, None).is_empty());
}

#[test]
fn updates_removals_exclusion_and_ties() {
    let mut idx = Index::new(Config::default());
    idx.upsert(&titled(1, "payment gateway timeout"));
    idx.upsert(&titled(2, "payment gateway timeout"));
    idx.upsert(&titled(3, "login page slow"));
    assert_eq!(idx.len(), 3);
    // Equal scores: the newer incident first.
    let q = titled(9, "gateway timeout");
    let ids: Vec<i64> = idx.search(&q, 10, None).iter().map(|h| h.0).collect();
    assert_eq!(ids, [2, 1]);
    // The incident itself is left out; k limits.
    assert_eq!(
        idx.search(&q, 10, Some(2))
            .iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(idx.search(&q, 1, None).len(), 1);
    // Rewriting incident 2 moves it out of the results; its old terms are gone.
    idx.upsert(&titled(2, "login page slow"));
    assert_eq!(idx.len(), 3);
    assert_eq!(
        idx.search(&q, 10, None)
            .iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        [1]
    );
    // Removing 1 leaves nothing for the query; the slot is reused by the next add.
    assert!(idx.remove(1));
    assert!(!idx.remove(1));
    assert!(idx.search(&q, 10, None).is_empty());
    idx.upsert(&titled(4, "gateway timeout again"));
    assert_eq!(idx.docs.len(), 3, "slot reused");
    assert_eq!(
        idx.search(&q, 10, None)
            .iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        [4]
    );
    // The same index built fresh from the surviving documents scores the same.
    let mut fresh = Index::new(Config::default());
    for d in [
        titled(2, "login page slow"),
        titled(3, "login page slow"),
        titled(4, "gateway timeout again"),
    ] {
        fresh.upsert(&d);
    }
    assert_eq!(fresh.search(&q, 10, None), idx.search(&q, 10, None));
}

#[test]
fn very_common_terms_are_skipped_in_large_indexes() {
    let cfg = Config {
        min_df_to_skip: 2,
        max_df_share: 0.5,
        ..Config::default()
    };
    let mut idx = Index::new(cfg);
    // "error" is in all 4 documents (> 2 and > 50 %): skipped; "disk" in one.
    for (id, t) in [
        (1, "error disk"),
        (2, "error cpu"),
        (3, "error net"),
        (4, "error mem"),
    ] {
        idx.upsert(&titled(id, t));
    }
    let hits = idx.search(&titled(0, "error"), 10, None);
    assert!(hits.is_empty());
    let hits = idx.search(&titled(0, "error disk"), 10, None);
    assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1]);
}

fn corpus() -> impl Strategy<Value = Vec<SimilarDoc>> {
    const WORDS: [&str; 12] = [
        "disk",
        "full",
        "timeout",
        "database",
        "checkout",
        "latency",
        "dns",
        "certificate",
        "expired",
        "memory",
        "leak",
        "deploy",
    ];
    let text = proptest::collection::vec(proptest::sample::select(&WORDS[..]), 0..6)
        .prop_map(|w| w.join(" "));
    proptest::collection::vec((text.clone(), text.clone(), text, 0i64..3), 1..25).prop_map(|docs| {
        docs.into_iter()
            .enumerate()
            .map(|(i, (title, description, notes, service))| SimilarDoc {
                id: i as i64 + 1,
                title,
                description,
                notes: vec![notes],
                service_ids: vec![service],
                ..Default::default()
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn ranking_does_not_depend_on_document_order(
        docs in corpus(),
        seed in any::<u64>(),
        query in corpus(),
    ) {
        let mut a = Index::new(Config::default());
        for d in &docs {
            a.upsert(d);
        }
        // The same documents in another order, with some added, removed and put back.
        let mut shuffled = docs.clone();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut b = Index::new(Config::default());
        for d in shuffled.iter().rev() {
            b.upsert(&titled(d.id, "placeholder words"));
        }
        for d in &shuffled {
            b.upsert(d);
        }
        let q = &query[0];
        prop_assert_eq!(a.search(q, 10, None), b.search(q, 10, None));
        // Scores are non-increasing down the list.
        let hits = a.search(q, 50, None);
        prop_assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
    }
}

/// Synthetic incidents: words drawn with a Zipf-like skew from a vocabulary of
/// 20,000, so a few words are everywhere and most are rare, as in real text.
struct Synth {
    state: u64,
    vocab: Vec<String>,
}

impl Synth {
    fn new() -> Synth {
        let vocab = (0..20_000).map(|i| format!("w{i}x")).collect();
        Synth {
            state: 0x9E37_79B9_7F4A_7C15,
            vocab,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic and fast.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn words(&mut self, n: usize) -> String {
        let picks: Vec<usize> = (0..n)
            .map(|_| {
                // u² skews towards small indexes (frequent words).
                let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
                ((u * u) * self.vocab.len() as f64) as usize
            })
            .collect();
        picks
            .iter()
            .map(|&i| self.vocab[i].as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn doc(&mut self, id: i64) -> SimilarDoc {
        SimilarDoc {
            id,
            title: self.words(6),
            root_cause: self.words(8),
            description: self.words(40),
            alert_summaries: (0..3).map(|_| self.words(6)).collect(),
            notes: (0..2).map(|_| self.words(15)).collect(),
            service_ids: vec![(self.next() % 200) as i64],
        }
    }
}

/// Not a benchmark (that lives in the bench harness): prints how long a query
/// takes over 100,000 synthetic incidents. Run with
/// `cargo test -p tocsin-core --release -- --ignored similar --nocapture`.
#[test]
#[ignore]
fn similar_search_timing_over_100k() {
    use std::time::Instant;
    let mut synth = Synth::new();
    let generated = Instant::now();
    let docs: Vec<SimilarDoc> = (1..=100_000).map(|id| synth.doc(id)).collect();
    let generate = generated.elapsed();
    let built = Instant::now();
    let mut idx = Index::new(Config::default());
    for d in &docs {
        idx.upsert(d);
    }
    let build = built.elapsed();
    drop(docs);
    let postings: usize = idx.postings.iter().map(Vec::len).sum();
    // One query first, so the timings are of a warm index, as in a server.
    idx.search(&synth.doc(999_999), 10, None);
    let mut times = Vec::new();
    for q in 0..201 {
        let query = synth.doc(1_000_000 + q);
        let t = Instant::now();
        let hits = idx.search(&query, 10, None);
        times.push(t.elapsed());
        assert!(!hits.is_empty());
    }
    times.sort();
    println!(
        "similar: 100000 docs (generated in {generate:?}), {} terms, {postings} postings, \
         indexed in {build:?}; \
         query median {:?}, p90 {:?}, max {:?}",
        idx.vocab.len(),
        times[100],
        times[180],
        times[200]
    );
}
