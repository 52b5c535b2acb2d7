//! `update = [{ key, names, types }]`: who may change what in a zone by RFC 2136
//! UPDATE. A grant names one `[[tsig]]` key, the owner names it covers (as
//! patterns resolved against the zone's origin when the config is read) and the
//! record types. An UPDATE is allowed only when every record it touches matches
//! one grant of the key that signed it; a zone without grants refuses UPDATE.

use hickory_proto::rr::{Name, RecordType};

/// One `update` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The `[[tsig]]` key that must sign the UPDATE.
    pub key: Name,
    pub names: Vec<NamePattern>,
    pub types: Vec<RecordType>,
}

/// An owner-name pattern of a grant, already absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    /// `*`: any name in the zone (`under` is the origin), or `*.k8s`: any name
    /// strictly below `under`.
    Below { under: Name, inclusive: bool },
    /// `_acme-challenge.*`: a name whose first label is `label`, anywhere at or
    /// below `under` (the origin).
    FirstLabel { label: Vec<u8>, under: Name },
    /// A name exactly.
    Exact(Name),
}

/// Why a grant entry of the config is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("names: {0:?} is not a name pattern (use *, *.NAME, LABEL.* or a name): {1}")]
    Pattern(String, String),
    #[error("names: {0:?} puts * in the middle; only *, *.NAME and LABEL.* are patterns")]
    Star(String),
    #[error("names: {0:?} is outside zone {1}")]
    Outside(String, Name),
    #[error("names: at least one name pattern is needed")]
    NoNames,
    #[error("types: {0:?} is not a record type lbdns serves through UPDATE")]
    Type(String),
    #[error("types: at least one record type is needed")]
    NoTypes,
}

impl NamePattern {
    /// Reads a pattern of `origin`'s grant list: relative to the zone unless it
    /// ends in a dot.
    pub fn parse(text: &str, origin: &Name) -> Result<NamePattern, GrantError> {
        let t = text.trim();
        let bad = |e: String| GrantError::Pattern(text.to_string(), e);
        let absolute = |rest: &str| -> Result<Name, GrantError> {
            let n = if rest.is_empty() || rest == "@" {
                origin.clone()
            } else if rest.ends_with('.') {
                super::parse_fqdn(rest).map_err(|e| bad(e.to_string()))?
            } else {
                let relative = Name::from_ascii(rest).map_err(|e| bad(e.to_string()))?;
                relative.append_domain(origin).map_err(|e| bad(e.to_string()))?.to_lowercase()
            };
            if !origin.zone_of(&n) {
                return Err(GrantError::Outside(text.to_string(), origin.clone()));
            }
            Ok(n)
        };
        let pattern = if t == "*" {
            NamePattern::Below { under: origin.clone(), inclusive: true }
        } else if let Some(rest) = t.strip_prefix("*.") {
            NamePattern::Below { under: absolute(rest)?, inclusive: false }
        } else if let Some(label) = t.strip_suffix(".*") {
            if label.is_empty() || label.contains('.') {
                return Err(bad("the label before .* must be one label".into()));
            }
            NamePattern::FirstLabel { label: label.to_ascii_lowercase().into_bytes(), under: origin.clone() }
        } else {
            NamePattern::Exact(absolute(t)?)
        };
        if t.matches('*').count() > 1
            || (t.contains('*') && !matches!(pattern, NamePattern::Below { .. } | NamePattern::FirstLabel { .. }))
        {
            return Err(GrantError::Star(text.to_string()));
        }
        if let NamePattern::Below { under, .. } | NamePattern::Exact(under) = &pattern {
            if under.iter().any(|l| l.contains(&b'*')) {
                return Err(GrantError::Star(text.to_string()));
            }
        }
        Ok(pattern)
    }

    /// Whether `name` (lower-case, absolute) matches.
    pub fn matches(&self, name: &Name) -> bool {
        match self {
            NamePattern::Below { under, inclusive } => under.zone_of(name) && (*inclusive || name != under),
            NamePattern::FirstLabel { label, under } => {
                under.zone_of(name) && name.iter().next().is_some_and(|l| l.eq_ignore_ascii_case(label))
            }
            NamePattern::Exact(n) => n == name,
        }
    }
}

/// Reads a grant's `types`: known types that UPDATE can change (not SOA, not a
/// meta type such as ANY).
pub fn parse_types(types: &[String]) -> Result<Vec<RecordType>, GrantError> {
    if types.is_empty() {
        return Err(GrantError::NoTypes);
    }
    types
        .iter()
        .map(|t| {
            let rt: RecordType = t.trim().to_ascii_uppercase().parse().map_err(|_| GrantError::Type(t.clone()))?;
            // SOA is lbdns's to manage; meta types are no data.
            let meta = matches!(rt, RecordType::OPT | RecordType::AXFR | RecordType::IXFR | RecordType::ANY);
            if matches!(rt, RecordType::Unknown(_) | RecordType::SOA) || meta {
                return Err(GrantError::Type(t.clone()));
            }
            Ok(rt)
        })
        .collect()
}

impl Grant {
    /// Whether this grant lets `key` change the `rtype` RRset at `name`.
    pub fn allows(&self, key: &Name, name: &Name, rtype: RecordType) -> bool {
        self.key == *key && self.types.contains(&rtype) && self.names.iter().any(|p| p.matches(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn patterns_match_as_the_readme_says() {
        let origin = n("example.test.");
        let p = |s: &str| NamePattern::parse(s, &origin).unwrap();
        let yes = |pat: &str, name: &str| assert!(p(pat).matches(&n(name)), "{pat} should match {name}");
        let no = |pat: &str, name: &str| assert!(!p(pat).matches(&n(name)), "{pat} should not match {name}");
        yes("*", "example.test.");
        yes("*", "a.b.example.test.");
        no("*", "other.test.");
        yes("*.k8s", "web.k8s.example.test.");
        yes("*.k8s", "a.web.k8s.example.test.");
        no("*.k8s", "k8s.example.test.");
        no("*.k8s", "web.example.test.");
        yes("_acme-challenge.*", "_acme-challenge.www.example.test.");
        yes("_acme-challenge.*", "_acme-challenge.example.test.");
        no("_acme-challenge.*", "www._acme-challenge.example.test.");
        yes("www", "www.example.test.");
        yes("www.example.test.", "www.example.test.");
        no("www", "a.www.example.test.");
        yes("*.k8s.example.test.", "x.k8s.example.test.");
    }

    #[test]
    fn bad_patterns_and_types_are_refused() {
        let origin = n("example.test.");
        for bad in ["a.*.b", "**", "*.*", "x.other.test.", "a.b.*"] {
            assert!(NamePattern::parse(bad, &origin).is_err(), "{bad}");
        }
        assert!(parse_types(&["TXT".into(), "a".into()]).is_ok());
        for bad in ["SOA", "ANY", "NOPE", "AXFR"] {
            assert!(parse_types(&[bad.into()]).is_err(), "{bad}");
        }
        assert_eq!(parse_types(&[]), Err(GrantError::NoTypes));
    }
}
