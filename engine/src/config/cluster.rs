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

/// The config in protobuf text format, one field per line (what is saved to disk).
pub fn to_text(c: &PbCluster) -> String {
    let options = prost_reflect::text_format::FormatOptions::new().pretty(true);
    let mut text = c
        .transcode_to_dynamic()
        .to_text_format_with_options(&options);
    text.push('\n');
    text
}

/// Binary protobuf carries length and tag bytes below 0x20; text never has control characters
/// other than tab, newline and carriage return.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|b| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

/// Parses text format; an unknown field or enum value is recorded and blanked out (offsets kept, so
/// later positions stay right) and parsing retried, so one run reports every unknown name. Any
/// other syntax error stops there. Returns the message if the remaining text parses.
fn parse_text_recovering(
    desc: &MessageDescriptor,
    text: &str,
) -> (Option<DynamicMessage>, Vec<String>) {
    let mut text = text.to_owned();
    let mut errors = Vec::new();
    // Each round removes one field, so the number of rounds is bounded by the input's size.
    for _ in 0..200 {
        match DynamicMessage::parse_text_format(desc.clone(), &text) {
            Ok(m) => return (Some(m), errors),
            Err(e) => {
                errors.push(text_error(&text, &e));
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
                        let blanked: String = text[start..end]
                            .chars()
                            .map(|c| if c == '\n' { '\n' } else { ' ' })
                            .collect();
                        text.replace_range(start..end, &blanked);
                    }
                    _ => return (None, errors),
                }
            }
        }
    }
    (None, errors)
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

fn text_error(text: &str, err: &prost_reflect::text_format::ParseError) -> String {
    use miette::Diagnostic;
    let offset = err.labels().and_then(|mut l| l.next()).map(|l| l.offset());
    match offset {
        Some(off) => {
            let before = &text[..off.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("cluster.pb:{line}:{col}: {err}")
        }
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
        ] {
            assert!(parse(input).is_err(), "{input:?} parsed");
        }
    }
}
