//! A `multipart/form-data` body, as a browser's file-upload form posts it
//! (RFC 7578): the parts, each with its field name, file name, type and
//! bytes. Only what the logo form needs — no nested multiparts, no
//! transfer encodings — and strict: anything else is refused, not guessed.

/// One part of the body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Part {
    /// The form field's name.
    pub name: String,
    /// The file's name, for a file input.
    pub filename: Option<String>,
    /// The part's `Content-Type`, lower-cased, without parameters.
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The boundary of a `multipart/form-data` content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let mime = parts.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        // RFC 2046: 1 to 70 characters.
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A header's parameter, e.g. `name` of `form-data; name="logo"`.
fn param(value: &str, key: &str) -> Option<String> {
    value
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

/// The parts of `body`, in order.
pub(crate) fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, &'static str> {
    let delimiter = format!("--{boundary}");
    let close = format!("\r\n--{boundary}");
    let start = find(body, delimiter.as_bytes()).ok_or("no boundary in the body")?;
    let mut rest = &body[start + delimiter.len()..];
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a boundary is not followed by a line end")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("a part has no end of headers")?;
        let head =
            std::str::from_utf8(&rest[..head_end]).map_err(|_| "a part header is not text")?;
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').ok_or("a part header has no colon")?;
            match k.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    if !v.trim().to_ascii_lowercase().starts_with("form-data") {
                        return Err("a part is not form-data");
                    }
                    name = param(v, "name");
                    filename = param(v, "filename");
                }
                "content-type" => {
                    content_type = v
                        .split(';')
                        .next()
                        .map(|t| t.trim().to_ascii_lowercase())
                        .filter(|t| !t.is_empty());
                }
                _ => {}
            }
        }
        let data_start = &rest[head_end + 4..];
        let end = find(data_start, close.as_bytes()).ok_or("a part does not end")?;
        parts.push(Part {
            name: name.ok_or("a part has no name")?,
            filename,
            content_type,
            data: data_start[..end].to_vec(),
        });
        rest = &data_start[end + close.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_upload_is_read_part_by_part() {
        let body = b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"_csrf\"\r\n\r\n\
            tok123\r\n\
            --XyZ\r\n\
            Content-Disposition: form-data; name=\"logo\"; filename=\"a.png\"\r\n\
            Content-Type: Image/PNG\r\n\r\n\
            \x89PNG\r\n\x1a\n--not-the-end\r\n\
            --XyZ--\r\n";
        let parts = parse(body, "XyZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "_csrf");
        assert_eq!(parts[0].data, b"tok123");
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[1].name, "logo");
        assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[1].data, b"\x89PNG\r\n\x1a\n--not-the-end");
    }

    #[test]
    fn boundaries_come_from_the_content_type_only_for_form_data() {
        assert_eq!(
            boundary("multipart/form-data; boundary=----abc").as_deref(),
            Some("----abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"q r\"").as_deref(),
            Some("q r")
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(boundary("multipart/mixed; boundary=x"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn broken_bodies_are_refused() {
        assert!(parse(b"nothing", "b").is_err());
        assert!(parse(
            b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nno end",
            "b"
        )
        .is_err());
        assert!(parse(
            b"--b\r\nContent-Disposition: attachment; name=\"x\"\r\n\r\nv\r\n--b--",
            "b"
        )
        .is_err());
        assert!(parse(
            b"--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--",
            "b"
        )
        .is_err());
        assert_eq!(parse(b"--b--\r\n", "b").unwrap(), vec![]);
    }
}
