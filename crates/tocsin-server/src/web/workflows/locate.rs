//! Where a refused field is in the YAML as typed: `steps[1].then[0].add_note`
//! → the line it is written on, so the editor can say "line 7" for checks that
//! name a field (YAML syntax errors name their line already). Best effort over
//! block-style YAML: when a part is written inline (`{text: x}`), the line of
//! the deepest part found is given.

/// One part of a field path.
#[derive(Debug, PartialEq)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(field: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(end) = rest.find(']') {
            match rest[1..end].parse() {
                Ok(n) => out.push(Seg::Index(n)),
                Err(_) => return out,
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

/// A line's content column after its indentation and any `- ` item markers,
/// and the column of its first `- `, if any. None for blank and comment lines.
fn columns(line: &str) -> Option<(usize, Option<usize>)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let mut rest = &line[indent..];
    if rest.is_empty() || rest.starts_with('#') {
        return None;
    }
    let dash = rest.starts_with("- ").then_some(indent);
    let mut col = indent;
    while let Some(r) = rest.strip_prefix("- ") {
        let spaces = r.len() - r.trim_start_matches(' ').len();
        col += 2 + spaces;
        rest = &r[spaces..];
    }
    Some((col, dash))
}

/// The 1-based line `field` is written on in `source`, if found.
pub(crate) fn line_of(source: &str, field: &str) -> Option<usize> {
    let lines: Vec<&str> = source.lines().collect();
    // The lines the current value spans: [from, to).
    let (mut from, mut to) = (0, lines.len());
    let mut found = None;
    for seg in segments(field) {
        let spans: Vec<(usize, (usize, Option<usize>))> = (from..to)
            .filter_map(|i| columns(lines[i]).map(|c| (i, c)))
            .collect();
        let next = match seg {
            Seg::Key(k) => {
                let Some(level) = spans.iter().map(|(_, (c, _))| *c).min() else {
                    break;
                };
                spans.iter().find_map(|(i, (c, _))| {
                    let text = lines[*i][*c..].trim_start_matches(['"', '\'']);
                    let hit = *c == level
                        && text.starts_with(k)
                        && text[k.len()..]
                            .trim_start_matches(['"', '\''])
                            .starts_with(':');
                    hit.then_some((*i, *c))
                })
            }
            Seg::Index(n) => {
                let Some(level) = spans.iter().filter_map(|(_, (_, d))| *d).min() else {
                    break;
                };
                spans
                    .iter()
                    .filter(|(_, (_, d))| *d == Some(level))
                    .nth(n)
                    .map(|(i, _)| (*i, level))
            }
        };
        let Some((line, col)) = next else { break };
        found = Some(line + 1);
        // The value runs until a line at this column or left of it (a list
        // item's own lines start right of its `- `).
        let is_item = matches!(seg, Seg::Index(_));
        let end = (line + 1..to)
            .find(|i| match columns(lines[*i]) {
                None => false,
                Some((c, d)) => {
                    let at = d.unwrap_or(c);
                    if is_item {
                        at <= col
                    } else {
                        at < col || (at == col && d.is_none())
                    }
                }
            })
            .unwrap_or(to);
        // An item's first key is on its own `- ` line.
        (from, to) = if is_item {
            (line, end)
        } else {
            (line + 1, end)
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const DEF: &str = "name: N
trigger: incident_declared
steps:
  - id: first
    http:
      url: https://example.com
  - if: vars.x
    then:
      - add_note: {text: a, colour: red}
      - add_note:
          text: b
          colour: red
";

    #[test]
    fn fields_are_found_on_their_lines() {
        assert_eq!(line_of(DEF, "trigger"), Some(2));
        assert_eq!(line_of(DEF, "steps[0]"), Some(4));
        assert_eq!(line_of(DEF, "steps[0].http.url"), Some(6));
        assert_eq!(line_of(DEF, "steps[1].then[1].add_note.colour"), Some(12));
        // Written inline: the line of the deepest part found.
        assert_eq!(line_of(DEF, "steps[1].then[0].add_note.colour"), Some(9));
        assert_eq!(line_of(DEF, "nothing.here"), None);
        // A sequence at its key's indentation.
        let flat = "name: N\nsteps:\n- wait: 1m\n- add_note:\n    text: x\n";
        assert_eq!(line_of(flat, "steps[1].add_note.text"), Some(5));
    }
}
