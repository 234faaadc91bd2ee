//! INI files as Go's goconf (Seesaw's `seesaw.cfg` reader) reads them. Used by every process
//! that reads `seesaw.cfg`, so they all see the same keys.

/// `seesaw.cfg` as Seesaw's goconf reads it: `[section]` headers and `key = value` (or
/// `key: value`) lines, names compared in lower case, whole-line comments starting with `;` or
/// `#`, and a comment after a value when `;` or `#` follows whitespace. A later key replaces an
/// earlier one in the same section, as in goconf.
#[derive(Debug, Default)]
pub struct Goconf {
    /// Sections in file order (`None`: keys before the first header), keys in file order.
    pub sections: Vec<(Option<String>, Section)>,
}

/// A section's `(key, value)` pairs in file order.
pub type Section = Vec<(String, String)>;

impl Goconf {
    /// Reads and parses the file at `path`; `None` when there is no such file. The error names
    /// the file.
    pub fn read(path: &std::path::Path) -> Result<Option<Self>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Parses the text; the error names the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ini = Self::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                continue;
            }
            let at = |what: &str| format!("line {}: {what}", n + 1);
            if let Some(rest) = line.strip_prefix('[') {
                let Some(name) = rest.strip_suffix(']') else {
                    return Err(at("a section header must end with ']'"));
                };
                let name = name.trim().to_ascii_lowercase();
                if name.is_empty() {
                    return Err(at("empty section name"));
                }
                if !ini
                    .sections
                    .iter()
                    .any(|(s, _)| s.as_deref() == Some(name.as_str()))
                {
                    ini.sections.push((Some(name.clone()), Vec::new()));
                }
                // Keys after a repeated header join the earlier section (goconf merges them).
                let i = ini
                    .sections
                    .iter()
                    .position(|(s, _)| s.as_deref() == Some(name.as_str()))
                    .expect("pushed above");
                let moved = ini.sections.remove(i);
                ini.sections.push(moved);
                continue;
            }
            let Some(sep) = line.find(['=', ':']) else {
                return Err(at(&format!("expected `key = value`, found {line:?}")));
            };
            let key = line[..sep].trim().to_ascii_lowercase();
            if key.is_empty() {
                return Err(at("empty key"));
            }
            let value = strip_inline_comment(&line[sep + 1..]).trim().to_owned();
            if ini.sections.is_empty() {
                ini.sections.push((None, Vec::new()));
            }
            let props = &mut ini.sections.last_mut().expect("not empty").1;
            match props.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => props.push((key, value)),
            }
        }
        Ok(ini)
    }

    /// The keys of a section (lower-case name).
    pub fn section(&self, name: &str) -> Option<&[(String, String)]> {
        self.sections
            .iter()
            .find(|(s, _)| s.as_deref() == Some(name))
            .map(|(_, p)| p.as_slice())
    }

    /// One value (lower-case section and key names).
    pub fn get_from(&self, section: Option<&str>, key: &str) -> Option<&str> {
        self.section(section?)?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The value without a trailing `; comment` or `# comment` (the marker must follow whitespace,
/// or start the value).
fn strip_inline_comment(v: &str) -> &str {
    let b = v.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if (*c == b';' || *c == b'#') && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &v[..i];
        }
    }
    v
}

#[cfg(test)]
mod tests;
