//! Twilio's webhook signature: base64(HMAC-SHA1(auth token, the URL Twilio
//! called followed by every POST parameter's name and value, sorted by name)),
//! sent as `X-Twilio-Signature`
//! (https://www.twilio.com/docs/usage/webhooks/webhooks-security).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The header Twilio signs its webhooks with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The signature Twilio sends for a POST to `url` with `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Whether `header` is Twilio's signature of the request. Twilio's own libraries
/// also accept the URL with its port taken out, or the scheme's default port put
/// in, since Twilio has signed either form; so does this.
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> bool {
    let Some(given) = header.and_then(|h| STANDARD.decode(h.trim()).ok()) else {
        return false;
    };
    url_forms(url)
        .iter()
        .any(|u| mac(auth_token, u, params).verify_slice(&given).is_ok())
}

/// `url`, without its port, and with the scheme's default port.
fn url_forms(url: &str) -> Vec<String> {
    let mut forms = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return forms;
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    // An IPv6 literal keeps its colons inside brackets.
    let host = match authority.rfind(']') {
        Some(end) => &authority[..=end],
        None => authority.split(':').next().unwrap_or(authority),
    };
    let default = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return forms,
    };
    forms.push(format!("{scheme}://{host}{tail}"));
    forms.push(format!("{scheme}://{host}:{default}{tail}"));
    forms.dedup();
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilios_documented_signature_example() {
        // From Twilio's request-validation examples (twilio-python's tests).
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let good = Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(verify("12345", url, &params, good));
        // The same request as Twilio may have signed it with a port.
        assert!(verify(
            "12345",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params,
            good
        ));
        assert!(verify(
            "12345",
            url,
            &params,
            Some("kvajT1Ptam85bY51eRf/AJRuM3w=") // signed with :443
        ));
        assert!(!verify("12346", url, &params, good));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            good
        ));
        let mut changed = params.clone();
        changed[2].1 = "1235".into();
        assert!(!verify("12345", url, &changed, good));
        assert!(!verify("12345", url, &params, None));
        assert!(!verify("12345", url, &params, Some("not base64!")));
    }

    #[test]
    fn repeated_parameters_sort_by_value_too() {
        // twilio-python's vector for a parameter sent twice.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature("12345", url, &params),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }
}
