//! `cluster.pb` bytes → the generated `Cluster` message. Text format (what operators write, and
//! what Seesaw keeps on disk) or binary (what config servers send). Unknown fields are rejected by
//! the text parser, and proto2 `required` fields, which prost does not enforce, are checked here by
//! walking the descriptors.

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage, Value};
use seesaw_proto::config::Cluster as PbCluster;

/// Parses cluster.pb bytes: text format unless the bytes look binary (what config servers send).
/// Errors carry a line:column position (text) or a field path (missing required fields); when the
/// text only has unknown names, the rest is still parsed and validated so every error is reported.
pub fn parse(bytes: &[u8]) -> Result<PbCluster, Vec<String>> {
    match parse_partial::<PbCluster>(bytes) {
        (Some(m), errors) if errors.is_empty() => Ok(m),
        (Some(m), mut errors) => {
            if let Err(v) = super::validate::validate(&m) {
                errors.extend(v);
            }
            Err(errors)
        }
        (None, errors) => Err(errors),
    }
}

/// Parses any config message (used for the `Healthcheck` fixtures of Seesaw's parser tests).
pub fn parse_message<M: ReflectMessage + Message + Default>(
    bytes: &[u8],
) -> Result<M, Vec<String>> {
    match parse_partial::<M>(bytes) {
        (Some(m), errors) if errors.is_empty() => Ok(m),
        (_, errors) => Err(errors),
    }
}

/// The message (if the input could be read past its errors) and every error found.
fn parse_partial<M: ReflectMessage + Message + Default>(bytes: &[u8]) -> (Option<M>, Vec<String>) {
    let desc = M::default().descriptor();
    let (dynamic, mut errors) = match std::str::from_utf8(bytes) {
        Ok(text) if !looks_binary(bytes) => parse_text_recovering(&desc, text),
        _ => match DynamicMessage::decode(desc, bytes) {
            Ok(m) => (Some(m), Vec::new()),
            Err(e) => (
                None,
                vec![format!("binary cluster config does not decode: {e}")],
            ),
        },
    };
    let Some(dynamic) = dynamic else {
        return (None, errors);
    };
    let mut missing = Vec::new();
    missing_required(&dynamic, "", &mut missing);
    if !missing.is_empty() {
        // Validating a message with holes would only add noise about the same holes.
        errors.extend(
            missing
                .into_iter()
                .map(|p| format!("{p}: required field is missing")),
        );
        return (None, errors);
    }
    match dynamic.transcode_to::<M>() {
        Ok(m) => (Some(m), errors),
        Err(e) => {
            errors.push(format!("config does not convert: {e}"));
            (None, errors)
        }
    }
}

/// Binary protobuf carries length and tag bytes below 0x20; text never has control characters
/// other than tab, newline and carriage return.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|b| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

/// A file with unknown names larger than this is refused on them alone, without the full
/// parse and validation that would list every other problem too (seconds at 20 MB).
const FULL_CHECK_MAX: usize = 1 << 20;

/// Parses text format; every unknown field or enum value is recorded and blanked out (offsets
/// kept, so later positions stay right) before the real parse, found by one linear pre-pass
/// ([`unknown_names`]), so a file with many unknown names costs one parse, not one per name.
/// Whatever the pre-pass could not see is still found by retrying (bounded). Any other syntax
/// error stops there. Returns the message if the remaining text parses.
fn parse_text_recovering(
    desc: &MessageDescriptor,
    text: &str,
) -> (Option<DynamicMessage>, Vec<String>) {
    let lines = Lines::new(text);
    let mut text = text.to_owned();
    let mut errors = Vec::new();
    for u in unknown_names(desc, &text) {
        errors.push(format!("cluster.pb:{}: {}", lines.at(u.at), u.message));
        blank(&mut text, u.start, u.end);
    }
    if !errors.is_empty() && text.len() > FULL_CHECK_MAX {
        // A big file that is refused already: answer now (the full parse of 20 MB costs
        // seconds) rather than look for more. What else is wrong shows once these are fixed.
        errors.push(
            "the rest of cluster.pb was not checked: remove the unknown names first".to_owned(),
        );
        return (None, errors);
    }
    // Each round removes one field, so the number of rounds is bounded by the input's size.
    for _ in 0..200 {
        match DynamicMessage::parse_text_format(desc.clone(), &text) {
            Ok(m) => return (Some(m), errors),
            Err(e) => {
                errors.push(text_error(&lines, &e));
                let msg = e.to_string();
                let unknown_field = msg.contains("not found for message");
                let recoverable = unknown_field || msg.contains("not found for enum");
                let span = {
                    use miette::Diagnostic;
                    e.labels()
                        .and_then(|mut l| l.next())
                        .map(|l| (l.offset(), l.len()))
                };
                match (recoverable, span) {
                    (true, Some((off, len))) => {
                        let Some((start, end)) = field_extent(&text, off, len, unknown_field)
                        else {
                            return (None, errors);
                        };
                        blank(&mut text, start, end);
                    }
                    _ => return (None, errors),
                }
            }
        }
    }
    (None, errors)
}

/// Replaces `text[start..end]` by spaces, keeping newlines (so positions stay right).
fn blank(text: &mut String, start: usize, end: usize) {
    let blanked: String = text[start..end]
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    text.replace_range(start..end, &blanked);
}

/// Line starts of a text, for `line:column` of a byte offset in O(log n).
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self(starts)
    }

    /// `line:column`, both from 1 (the column in bytes).
    fn at(&self, off: usize) -> String {
        let line = self.0.partition_point(|&s| s <= off);
        let start = self.0[line - 1];
        format!("{line}:{}", off - start + 1)
    }
}

/// An unknown field or enum value found by [`unknown_names`].
struct Unknown {
    /// Where the error points (the field name, or the enum value).
    at: usize,
    /// The whole field, name to end of value (and a trailing separator).
    start: usize,
    end: usize,
    /// The same words as prost-reflect's parser uses.
    message: String,
}

/// One token of the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// An identifier, number or other bare word.
    Word,
    /// A string literal (adjacent ones are separate tokens).
    Str,
    /// One punctuation byte.
    Punct(u8),
}

/// The tokens of a text-format document as (kind, start, end); `None` on a lexical error (an
/// unterminated string), which the real parser then reports.
fn tokens(b: &[u8]) -> Option<Vec<(Tok, usize, usize)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' || c == b'\'' {
            let end = skip_string(b, i)?;
            out.push((Tok::Str, i, end));
            i = end;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'+' || c == b'.' {
            let start = i;
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-' | b'+'))
            {
                i += 1;
            }
            out.push((Tok::Word, start, i));
        } else {
            out.push((Tok::Punct(c), i, i + 1));
            i += 1;
        }
    }
    Some(out)
}

/// Every unknown field name and enum value of a text-format document, in one pass over its
/// tokens with the message descriptors. It stops quietly at anything it does not understand
/// (extensions, syntax errors): the real parser reports those.
fn unknown_names(desc: &MessageDescriptor, text: &str) -> Vec<Unknown> {
    let b = text.as_bytes();
    let Some(toks) = tokens(b) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut pos = 0;
    let _ = fields(&toks, &mut pos, Some(desc), None, b, &mut out, 0);
    out
}

/// Deeper nesting than any config has: the pre-pass stops there (no stack overflow on hostile
/// input) and leaves the rest to the real parser.
const MAX_DEPTH: usize = 64;

/// The fields of one message up to `closer` (or the end of the input for the top level).
/// `desc` is `None` inside an unknown field's message, whose names are not checked.
fn fields(
    toks: &[(Tok, usize, usize)],
    pos: &mut usize,
    desc: Option<&MessageDescriptor>,
    closer: Option<u8>,
    b: &[u8],
    out: &mut Vec<Unknown>,
    depth: usize,
) -> Option<()> {
    use prost_reflect::Kind;
    if depth > MAX_DEPTH {
        return None;
    }
    loop {
        let Some(&(tok, start, end)) = toks.get(*pos) else {
            return closer.is_none().then_some(());
        };
        *pos += 1;
        match tok {
            Tok::Punct(c) if Some(c) == closer => return Some(()),
            Tok::Punct(b';' | b',') => continue,
            Tok::Word => {}
            _ => return None,
        }
        let name = std::str::from_utf8(&b[start..end]).ok()?;
        let field = desc.and_then(|d| d.get_field_by_name(name));
        let unknown_field = desc.is_some() && field.is_none();
        if matches!(toks.get(*pos), Some((Tok::Punct(b':'), _, _))) {
            *pos += 1;
        }
        let child = field.as_ref().and_then(|f| match f.kind() {
            Kind::Message(m) => Some(m),
            _ => None,
        });
        let enum_desc = field.as_ref().and_then(|f| match f.kind() {
            Kind::Enum(e) => Some(e),
            _ => None,
        });
        let mut bad_enum: Option<(usize, String)> = None;
        let mut check_enum = |s: usize, e: usize| {
            if let (Some(ed), None) = (&enum_desc, &bad_enum) {
                let v = std::str::from_utf8(&b[s..e]).unwrap_or_default();
                let numeric = v.starts_with(|c: char| c.is_ascii_digit() || c == '-');
                if !numeric && ed.get_value_by_name(v).is_none() {
                    bad_enum = Some((
                        s,
                        format!("value '{v}' was not found for enum '{}'", ed.full_name()),
                    ));
                }
            }
        };
        let value_end = match *toks.get(*pos)? {
            (Tok::Punct(open @ (b'<' | b'{')), _, _) => {
                *pos += 1;
                let close = if open == b'<' { b'>' } else { b'}' };
                let d = if unknown_field { None } else { child.as_ref() };
                fields(toks, pos, d, Some(close), b, out, depth + 1)?;
                toks[*pos - 1].2
            }
            (Tok::Punct(b'['), _, _) => {
                *pos += 1;
                loop {
                    match *toks.get(*pos)? {
                        (Tok::Punct(b']'), _, e) => {
                            *pos += 1;
                            break e;
                        }
                        (Tok::Punct(b','), _, _) => *pos += 1,
                        (Tok::Punct(open @ (b'<' | b'{')), _, _) => {
                            *pos += 1;
                            let close = if open == b'<' { b'>' } else { b'}' };
                            let d = if unknown_field { None } else { child.as_ref() };
                            fields(toks, pos, d, Some(close), b, out, depth + 1)?;
                        }
                        (Tok::Word, s, e) => {
                            check_enum(s, e);
                            *pos += 1;
                        }
                        (Tok::Str, _, _) => *pos += 1,
                        _ => return None,
                    }
                }
            }
            (Tok::Word, s, e) => {
                check_enum(s, e);
                *pos += 1;
                e
            }
            (Tok::Str, _, mut e) => {
                *pos += 1;
                while let Some(&(Tok::Str, _, e2)) = toks.get(*pos) {
                    e = e2;
                    *pos += 1;
                }
                e
            }
            _ => return None,
        };
        let mut field_end = value_end;
        if let Some(&(Tok::Punct(b',' | b';'), _, e)) = toks.get(*pos) {
            field_end = e;
        }
        if unknown_field {
            out.push(Unknown {
                at: start,
                start,
                end: field_end,
                message: format!(
                    "field '{name}' not found for message '{}'",
                    desc.map(|d| d.full_name().to_owned()).unwrap_or_default()
                ),
            });
        } else if let Some((at, message)) = bad_enum {
            out.push(Unknown {
                at,
                start,
                end: field_end,
                message,
            });
        }
    }
}

/// The byte range of the whole `name: value` field around an error span: the span is the field
/// name (`is_name`, an unknown field) or its value (an unknown enum value).
fn field_extent(text: &str, off: usize, len: usize, is_name: bool) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
    let mut start = off;
    let mut i;
    if !is_name {
        // Walk back from the value over `name:` to the field name.
        i = off;
        while i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t' || b[i - 1] == b':') {
            i -= 1;
        }
        while i > 0 && ident(b[i - 1]) {
            i -= 1;
        }
        start = i;
    }
    if is_name {
        // The span is the name: skip it, the separator, then the value.
        i = off + len;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b'\n' || b[i] == b'\r') {
            i += 1;
        }
        if i < b.len() && b[i] == b':' {
            i += 1;
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i = skip_value(b, i)?;
    } else {
        i = off + len;
    }
    if i < b.len() && (b[i] == b',' || b[i] == b';') {
        i += 1;
    }
    Some((start, i.min(b.len())))
}

/// Skips one text-format value starting at `i`: a message, a list, strings or a scalar token.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    let first = *b.get(i)?;
    match first {
        b'{' | b'<' | b'[' => {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'"' | b'\'' => i = skip_string(b, i)? - 1,
                    b'{' | b'<' | b'[' => depth += 1,
                    b'}' | b'>' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        b'"' | b'\'' => {
            // Adjacent strings concatenate.
            let mut end = skip_string(b, i)?;
            loop {
                let mut j = end;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if j < b.len() && (b[j] == b'"' || b[j] == b'\'') {
                    end = skip_string(b, j)?;
                } else {
                    return Some(end);
                }
            }
        }
        _ => {
            while i < b.len() && !b[i].is_ascii_whitespace() && !b",;}>]".contains(&b[i]) {
                i += 1;
            }
            Some(i)
        }
    }
}

/// The index just past the string literal starting at `i`.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == quote => return Some(j + 1),
            b'\n' => return None,
            _ => j += 1,
        }
    }
    None
}

fn text_error(lines: &Lines, err: &prost_reflect::text_format::ParseError) -> String {
    use miette::Diagnostic;
    let offset = err.labels().and_then(|mut l| l.next()).map(|l| l.offset());
    match offset {
        Some(off) => format!("cluster.pb:{}: {err}", lines.at(off)),
        None => format!("cluster.pb: {err}"),
    }
}

/// Appends the path of every unset proto2 `required` field under `msg`.
fn missing_required(msg: &DynamicMessage, path: &str, out: &mut Vec<String>) {
    let desc: MessageDescriptor = msg.descriptor();
    for field in desc.fields() {
        let fpath = if path.is_empty() {
            field.name().to_owned()
        } else {
            format!("{path}.{}", field.name())
        };
        if field.cardinality() == prost_reflect::Cardinality::Required && !msg.has_field(&field) {
            out.push(fpath);
            continue;
        }
        if !msg.has_field(&field) {
            continue;
        }
        match &*msg.get_field(&field) {
            Value::Message(m) => missing_required(m, &fpath, out),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(m) = item {
                        missing_required(m, &format!("{fpath}{}", item_label(m, i)), out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// `["name"]` for list items that have a non-empty `name`, `[index]` otherwise.
fn item_label(m: &DynamicMessage, index: usize) -> String {
    match m.get_field_by_name("name").as_deref() {
        Some(Value::String(n)) if !n.is_empty() => format!("[{n:?}]"),
        _ => format!("[{index}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_give_the_same_message() {
        let text = br#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" > node { fqdn: "n." }"#;
        let from_text = parse(text).unwrap();
        let binary = from_text.encode_to_vec();
        assert_eq!(parse(&binary).unwrap(), from_text);
    }

    #[test]
    fn unknown_field_is_rejected_with_position() {
        let errs = parse(b"seesaw_vip < fqdn: \"v.\" >\nbogus: 1\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("cluster.pb:2:1:"), "{errs:?}");
        assert!(errs[0].contains("bogus"), "{errs:?}");
    }

    #[test]
    fn missing_required_fields_are_listed_by_path() {
        let text = br#"
            seesaw_vip < ipv4: "10.0.0.1/24" >
            vserver < name: "web" entry_address < fqdn: "w." > vserver_entry < port: 80 > >
            vserver < rp: "x" entry_address < fqdn: "w." > >
        "#;
        let errs = parse(text).unwrap_err();
        assert_eq!(
            errs,
            [
                "seesaw_vip.fqdn: required field is missing",
                "vserver[\"web\"].rp: required field is missing",
                "vserver[\"web\"].vserver_entry[0].protocol: required field is missing",
                "vserver[1].name: required field is missing",
            ]
        );
    }

    #[test]
    fn every_unknown_name_and_validation_error_is_reported_in_one_go() {
        let text = b"seesaw_vip < fqdn: \"v.\" status: NOPE >\nbogus: { a: 1 b: \"x>\" }\n\
            vserver < name: \"w\" rp: \"x\" entry_address < fqdn: \"w.\" ipv4: \"10.0.0.1/32\" >\n\
              vserver_entry < protocol: TCP port: 0 nope: 3 > >\n";
        let errs = parse(text).unwrap_err();
        assert_eq!(
            errs,
            [
                "cluster.pb:1:33: value 'NOPE' was not found for enum 'seesaw.config.Host.Status'",
                "cluster.pb:2:1: field 'bogus' not found for message 'seesaw.config.Cluster'",
                "cluster.pb:4:39: field 'nope' not found for message 'seesaw.config.VserverEntry'",
                "vserver[\"w\"].vserver_entry[0].port: 0 is not a valid port (1-65535)",
            ]
        );
    }

    #[test]
    fn hostile_inputs_error_instead_of_panicking() {
        for input in [
            &b""[..],
            b"\xff\xfe\x00",
            b"seesaw_vip <",
            b"seesaw_vip < fqdn: \"\\xZZ\" >",
            b"vserver < vserver_entry < port: 99999999999999999999 > >",
            b"\x0a\xff\xff\xff\xff\x0f",
            b"seesaw_vip < fqdn: \"a\" status: NOT_A_STATUS >",
            // Shapes aimed at the unknown-name pre-pass: stray closers, an extension name,
            // lists of junk, an unknown field holding an unclosed message, unterminated strings.
            b"> > } ]",
            b"[ext.name]: 1 seesaw_vip < fqdn: \"a\" >",
            b"bogus: [1, <a: 2>, \"s\" x] seesaw_vip < fqdn: \"a\" >",
            b"bogus < seesaw_vip < fqdn: \"a\" >",
            b"seesaw_vip < fqdn: \"a >",
            b"vserver: < vserver_entry: [ < scheduler: [RR, NOPE] > ] >",
        ] {
            assert!(parse(input).is_err(), "{input:?} parsed");
        }
        // Deep nesting stops the pre-pass instead of the stack.
        let deep = format!("{}{}", "bogus < ".repeat(100_000), "> ".repeat(100_000));
        assert!(parse(deep.as_bytes()).is_err());
    }
}
