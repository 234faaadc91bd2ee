//! The goconf reader against the forms Seesaw's files use, and against hostile input.

use super::*;

#[test]
fn names_in_any_case_comments_and_separators() {
    let ini = Goconf::parse(
        "; a comment\n# another\n[Cluster]\nName = au-syd ; inline\nvrid: 61 # inline\n\
         url = http://x/#frag\n[CLUSTER]\nname = later\n",
    )
    .unwrap();
    assert_eq!(ini.get_from(Some("cluster"), "name"), Some("later"));
    assert_eq!(ini.get_from(Some("cluster"), "vrid"), Some("61"));
    // A marker that does not follow whitespace is part of the value.
    assert_eq!(ini.get_from(Some("cluster"), "url"), Some("http://x/#frag"));
    assert_eq!(ini.sections.len(), 1, "a repeated header joins its section");
}

#[test]
fn hostile_input_is_refused_with_its_line() {
    for (text, want) in [
        (
            "[cluster\nname = x\n",
            "line 1: a section header must end with ']'",
        ),
        ("[]\n", "line 1: empty section name"),
        ("[a]\njust words\n", "line 2: expected `key = value`"),
        ("[a]\n= v\n", "line 2: empty key"),
    ] {
        let e = Goconf::parse(text).unwrap_err();
        assert!(e.starts_with(want), "{text:?}: {e}");
    }
    // Binary junk and huge lines parse or fail, never panic.
    let junk: String = (0..10_000u32)
        .map(|i| char::from_u32(i % 0x2FF).unwrap_or('x'))
        .collect();
    let _ = Goconf::parse(&junk);
    let _ = Goconf::parse(&format!("[a]\nk = {}\n", "v".repeat(1 << 20)));
}

#[test]
fn keys_before_any_section_are_kept_apart() {
    let ini = Goconf::parse("k = v\n[s]\nk = w\n").unwrap();
    assert_eq!(ini.sections[0].0, None);
    assert_eq!(ini.get_from(Some("s"), "k"), Some("w"));
}

#[test]
fn read_names_the_file_and_a_missing_file_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seesaw.cfg");
    assert_eq!(Goconf::read(&path).map(|i| i.is_none()), Ok(true));
    std::fs::write(&path, "[dataplane]\nkind = proxy\n").unwrap();
    let ini = Goconf::read(&path).unwrap().unwrap();
    assert_eq!(ini.get_from(Some("dataplane"), "kind"), Some("proxy"));
    std::fs::write(&path, "[dataplane\n").unwrap();
    let e = Goconf::read(&path).unwrap_err();
    assert!(e.starts_with(&format!("{}: line 1", path.display())), "{e}");
}
