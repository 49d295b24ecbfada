//! Text analysis for similar-incident search: Unicode-aware tokens, a small
//! English stop-word list and a light, deterministic stemmer.
//!
//! A token is a run of letters and digits (Unicode), lower-cased. Tokens of one
//! character, longer than 32 characters (hashes, ids), or all digits and longer
//! than 5 (timestamps, request ids) carry no meaning across incidents and are
//! dropped; short numbers stay (`502`, `5432`). Scripts written without spaces
//! (Chinese, Japanese) become one token per run: a known limit.
//!
//! The stemmer only folds the English endings incident text is full of, so that
//! "timeouts", "timed out" and "timing out" meet: plural `-s`/`-es`/`-ies`, past
//! `-ed`/`-ied`, and `-ing`, then a doubled final consonant (`stopp` → `stop`)
//! and a final `e` (`cache`/`caching` → `cach`). Only ASCII words (letters and digits: `502s` → `502`) are stemmed.

/// Words too common in incident text to tell incidents apart.
const STOP_WORDS: [&str; 56] = [
    "a", "after", "all", "an", "and", "any", "are", "as", "at", "be", "been", "before", "being",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "if",
    "in", "into", "is", "it", "its", "no", "not", "of", "on", "or", "our", "so", "than", "that",
    "the", "their", "then", "there", "these", "this", "to", "was", "we", "were", "when", "which",
    "while", "will", "with", "you",
];

/// Longest token kept, in characters.
const MAX_TOKEN: usize = 32;
/// Longest all-digit token kept.
const MAX_NUMBER: usize = 5;

/// The terms of `text`, in order, repeats kept (they are term frequencies).
pub fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .filter_map(|w| {
            let w = w.to_lowercase();
            let chars = w.chars().count();
            let number = w.chars().all(|c| c.is_ascii_digit());
            if !(2..=MAX_TOKEN).contains(&chars) || (number && chars > MAX_NUMBER) {
                return None;
            }
            if STOP_WORDS.binary_search(&w.as_str()).is_ok() {
                return None;
            }
            let s = stem(&w);
            (s.chars().count() >= 2).then_some(s)
        })
}

/// The stem of one lower-cased word.
pub fn stem(word: &str) -> String {
    if !word
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return word.to_string();
    }
    let mut w = word.to_string();
    let n = w.len();
    if n > 4 && (w.ends_with("ies") || w.ends_with("ied")) {
        w.replace_range(n - 3.., "y");
    } else if w.ends_with("sses") {
        w.truncate(n - 2);
    } else if n > 3
        && w.ends_with('s')
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
    {
        w.truncate(n - 1);
    } else if let Some(stem) = suffix_stem(&w, "ing").or_else(|| suffix_stem(&w, "ed")) {
        w = undouble(stem);
    }
    // A final e is dropped everywhere, so "cache", "cached" and "caching" agree.
    if w.len() > 3 && w.ends_with('e') {
        w.pop();
    }
    w
}

/// `word` without `suffix`, if what remains is at least three letters with a vowel.
fn suffix_stem<'a>(word: &'a str, suffix: &str) -> Option<&'a str> {
    let stem = word.strip_suffix(suffix)?;
    (stem.len() >= 3 && stem.contains(['a', 'e', 'i', 'o', 'u', 'y'])).then_some(stem)
}

/// `stopp` → `stop`, but `kill` and `pass` stay.
fn undouble(stem: &str) -> String {
    let b = stem.as_bytes();
    let n = b.len();
    if n >= 2 && b[n - 1] == b[n - 2] && !b"aeioulsz".contains(&b[n - 1]) {
        stem[..n - 1].to_string()
    } else {
        stem.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stems() {
        for (word, want) in [
            ("timeouts", "timeout"),
            ("errors", "error"),
            ("queries", "query"),
            ("retried", "retry"),
            ("processes", "process"),
            ("failed", "fail"),
            ("failing", "fail"),
            ("stopped", "stop"),
            ("running", "run"),
            ("killing", "kill"),
            ("cache", "cach"),
            ("caching", "cach"),
            ("cached", "cach"),
            ("caches", "cach"),
            ("status", "status"),
            ("redis", "redis"),
            ("dns", "dns"),
            ("string", "string"),
            ("ring", "ring"),
        ] {
            assert_eq!(stem(word), want, "{word}");
        }
    }

    #[test]
    fn tokens() {
        let t: Vec<String> =
            terms("The API-Gateway returned 502s to ÜBER-Clients (req 1234567), ΣΊΣΥΦΟΣ x")
                .collect();
        // "The" and "to" are stop words, "x" too short, 1234567 an id; Unicode is
        // lower-cased ("über", Greek final sigma) and left unstemmed.
        assert_eq!(
            t,
            [
                "api",
                "gateway",
                "return",
                "502",
                "über",
                "client",
                "req",
                "σίσυφος"
            ]
        );
    }
}
