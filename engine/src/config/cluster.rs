//! `cluster.pb` bytes → the generated `Cluster` message. Text format (what operators write, and
//! what Seesaw keeps on disk) or binary (what config servers send). Unknown fields are rejected by
//! the text parser, and proto2 `required` fields, which prost does not enforce, are checked here by
//! walking the descriptors.

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage, Value};
use seesaw_proto::config::Cluster as PbCluster;

/// Parses cluster.pb bytes: text format if the bytes are UTF-8 text that parses, else binary.
/// Errors carry a line:column position (text) or a field path (missing required fields).
pub fn parse(bytes: &[u8]) -> Result<PbCluster, Vec<String>> {
    parse_message::<PbCluster>(bytes)
}

/// Parses any config message (used for the `Healthcheck` fixtures of Seesaw's parser tests).
pub fn parse_message<M: ReflectMessage + Message + Default>(
    bytes: &[u8],
) -> Result<M, Vec<String>> {
    let desc = M::default().descriptor();
    let dynamic = match std::str::from_utf8(bytes) {
        Ok(text) => match DynamicMessage::parse_text_format(desc.clone(), text) {
            Ok(m) => m,
            Err(text_err) => match DynamicMessage::decode(desc.clone(), bytes) {
                // Valid UTF-8 can still be binary protobuf; accept it only if it decodes cleanly.
                Ok(m) if !text.trim().is_empty() && looks_binary(bytes) => m,
                _ => return Err(vec![text_error(text, &text_err)]),
            },
        },
        Err(_) => DynamicMessage::decode(desc.clone(), bytes)
            .map_err(|e| vec![format!("binary cluster config does not decode: {e}")])?,
    };
    let mut missing = Vec::new();
    missing_required(&dynamic, "", &mut missing);
    if !missing.is_empty() {
        return Err(missing
            .into_iter()
            .map(|p| format!("{p}: required field is missing"))
            .collect());
    }
    dynamic
        .transcode_to::<M>()
        .map_err(|e| vec![format!("config does not convert: {e}")])
}

/// Binary protobuf carries length and tag bytes below 0x20; text never has control characters
/// other than tab, newline and carriage return.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|b| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
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
