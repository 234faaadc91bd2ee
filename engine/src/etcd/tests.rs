//! The etcd store's pure parts: keys, values and their decoding.

use super::*;

#[test]
fn hostile_member_values_are_refused() {
    let ok = br#"{"pool":"web@demo","host":"b1.demo.","ip":"10.0.0.3","weight":2}"#;
    assert_eq!(parse_member(ok).unwrap().weight, 2);
    for bad in [
        &b""[..],
        b"null",
        b"{}",
        br#"{"pool":"web","host":"b1.","ip":"10.0.0.3","weight":1,"extra":1}"#,
        br#"{"pool":"","host":"b1.","ip":"10.0.0.3","weight":1}"#,
        br#"{"pool":"web","host":"b 1","ip":"10.0.0.3","weight":1}"#,
        br#"{"pool":"web","host":"a/b","ip":"10.0.0.3","weight":1}"#,
        br#"{"pool":"web","host":"b1.","ip":"10.0.0.300","weight":1}"#,
        br#"{"pool":"web","host":"b1.","ip":"10.0.0.3","weight":-1}"#,
        br#"{"pool":"web\n","host":"b1.","ip":"10.0.0.3","weight":1}"#,
        &[b'{'; 100_000][..],
    ] {
        assert!(
            parse_member(bad).is_err(),
            "{}",
            String::from_utf8_lossy(&bad[..bad.len().min(80)])
        );
    }
}
