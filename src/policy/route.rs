//! Path patterns of the route table, in axum's syntax: literal segments, `{name}` for one
//! segment (with an optional literal prefix or suffix in the segment, as in `{y}.png`), and a
//! final `{*rest}` for one or more trailing segments.
//!
//! ```
//! use gis_auth::policy::PathPattern;
//!
//! let p = PathPattern::parse("/items/{item}/metadata")?;
//! assert_eq!(p.capture("/items/roads-2026/metadata", "item"), Some("roads-2026"));
//! assert!(!p.matches("/items/roads-2026"));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Param {
        name: Box<str>,
        prefix: Box<str>,
        suffix: Box<str>,
    },
    Rest(Box<str>),
}

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: Box<str>,
    segments: Box<[Segment]>,
}

impl PathPattern {
    /// Parses a pattern such as `/tiles/{z}/{x}/{y}.png`.
    pub fn parse(pattern: &str) -> Result<PathPattern, ConfigError> {
        let invalid = |reason| ConfigError::InvalidRoute {
            pattern: pattern.to_owned(),
            reason,
        };
        let Some(body) = pattern.strip_prefix('/') else {
            return Err(invalid("a pattern starts with `/`"));
        };
        let mut segments = Vec::new();
        let pieces: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        for (i, piece) in pieces.iter().enumerate() {
            let last = i + 1 == pieces.len();
            segments.push(parse_segment(piece, last).map_err(invalid)?);
        }
        let mut names: Vec<&str> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param { name, .. } | Segment::Rest(name) => Some(&**name),
                Segment::Literal(_) => None,
            })
            .collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid("a parameter name appears twice"));
        }
        Ok(PathPattern {
            source: pattern.into(),
            segments: segments.into_boxed_slice(),
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `name` is one of the pattern's parameters.
    pub fn has_param(&self, name: &str) -> bool {
        self.segments.iter().any(|s| match s {
            Segment::Param { name: n, .. } | Segment::Rest(n) => **n == *name,
            Segment::Literal(_) => false,
        })
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        self.capture(path, "").is_some()
    }

    /// Matches `path`; gives `Some` with the (still percent-encoded) value of parameter `name`
    /// (or `Some("")` when `name` is not a parameter of the pattern), `None` when the path
    /// does not match.
    pub fn capture<'p>(&self, path: &'p str, name: &str) -> Option<&'p str> {
        let mut rest = path.strip_prefix('/')?;
        let mut captured = "";
        let n = self.segments.len();
        if n == 0 {
            return rest.is_empty().then_some("");
        }
        for (i, segment) in self.segments.iter().enumerate() {
            if let Segment::Rest(param) = segment {
                if rest.is_empty() {
                    return None;
                }
                if **param == *name {
                    captured = rest;
                }
                return Some(captured);
            }
            let (piece, tail) = match rest.as_bytes().iter().position(|&b| b == b'/') {
                Some(at) => (&rest[..at], Some(&rest[at + 1..])),
                None => (rest, None),
            };
            let is_last = i + 1 == n;
            if is_last != tail.is_none() {
                return None;
            }
            match segment {
                Segment::Literal(lit) => {
                    if **lit != *piece {
                        return None;
                    }
                }
                Segment::Param {
                    name: param,
                    prefix,
                    suffix,
                } => {
                    // Most parameters are whole segments: skip the empty affix tests.
                    let value = if prefix.is_empty() {
                        piece
                    } else {
                        piece.strip_prefix(&**prefix)?
                    };
                    let value = if suffix.is_empty() {
                        value
                    } else {
                        value.strip_suffix(&**suffix)?
                    };
                    if value.is_empty() {
                        return None;
                    }
                    if **param == *name {
                        captured = value;
                    }
                }
                Segment::Rest(_) => unreachable!("handled above"),
            }
            rest = tail.unwrap_or("");
        }
        Some(captured)
    }
}

fn parse_segment(piece: &str, last: bool) -> Result<Segment, &'static str> {
    let Some(open) = piece.find('{') else {
        if piece.contains('}') {
            return Err("a `}` without `{`");
        }
        if piece.is_empty() {
            return Err("empty segments are not allowed");
        }
        return Ok(Segment::Literal(piece.into()));
    };
    let close = piece[open..]
        .find('}')
        .map(|c| c + open)
        .ok_or("a `{` without `}`")?;
    let (prefix, name, suffix) = (&piece[..open], &piece[open + 1..close], &piece[close + 1..]);
    if prefix.contains('}') || suffix.contains(['{', '}']) {
        return Err("one parameter per segment");
    }
    if let Some(rest_name) = name.strip_prefix('*') {
        if !last || !prefix.is_empty() || !suffix.is_empty() {
            return Err("`{*name}` must be the whole last segment");
        }
        if !valid_param_name(rest_name) {
            return Err("a parameter name has only letters, digits and `_`");
        }
        return Ok(Segment::Rest(rest_name.into()));
    }
    if !valid_param_name(name) {
        return Err("a parameter name has only letters, digits and `_`");
    }
    Ok(Segment::Param {
        name: name.into(),
        prefix: prefix.into(),
        suffix: suffix.into(),
    })
}

fn valid_param_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    #[test]
    fn literal_and_parameter_segments() {
        let tiles = p("/tiles/{z}/{x}/{y}.png");
        assert!(tiles.matches("/tiles/1/2/3.png"));
        assert!(!tiles.matches("/tiles/1/2/3.jpg"));
        assert!(!tiles.matches("/tiles/1/2/.png"));
        assert!(!tiles.matches("/tiles/1/2/3.png/"));
        assert!(!tiles.matches("/tiles/1/2"));
        assert!(!tiles.matches("/tiles/1/2/3/4.png"));
        assert_eq!(tiles.capture("/tiles/1/2/3.png", "y"), Some("3"));
        assert!(p("/").matches("/"));
        assert!(!p("/").matches("/x"));
        assert!(p("/health").matches("/health"));
        assert!(!p("/health").matches("/health/"));
        assert!(!p("/health").matches("health"));
    }

    #[test]
    fn rest_parameters_take_one_or_more_segments() {
        let files = p("/files/{*path}");
        assert_eq!(files.capture("/files/a/b/c", "path"), Some("a/b/c"));
        assert!(!files.matches("/files/"));
        assert!(!files.matches("/files"));
    }

    #[test]
    fn bad_patterns_are_refused_by_name() {
        for bad in [
            "tiles", "/a//b", "/{", "/{}", "/{a}{b}", "/{*r}/x", "/{a}/{a}", "/x{*r}", "/a}",
        ] {
            let err = PathPattern::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }
}
