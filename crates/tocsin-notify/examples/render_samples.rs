//! Prints every built-in template rendered for the sample notices (for the docs).
use tocsin_core::escalation::Channel;
use tocsin_notify::{samples, Templates};

fn main() {
    let t = Templates::default();
    for n in samples() {
        println!("=== {}", serde_json::to_string(&n).unwrap());
        for c in [
            Channel::Sms,
            Channel::Voice,
            Channel::Email,
            Channel::Slack,
            Channel::Ntfy,
        ] {
            let m = t.render(c, &n).unwrap();
            println!(
                "--- {c:?}\nsubject: {}\nshort ({}): {}\nlong:\n{}",
                m.subject,
                m.short.chars().count(),
                m.short,
                m.long
            );
            if let Some(h) = m.html {
                println!("html:\n{h}");
            }
        }
    }
}
