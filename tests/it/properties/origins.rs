//! Origins: a reference model of the origin patterns, and strategies that generate patterns
//! with origins they admit or just miss.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub(super) fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub(super) fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Ports {
    Default,
    Any,
    Exact(u16),
}

/// An allowed-origin pattern, as parts.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    scheme: Option<Scheme>,
    wildcard: bool,
    labels: Vec<String>,
    ports: Ports,
    trailing_slash: bool,
}

/// A request origin, as parts.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    scheme: Scheme,
    labels: Vec<String>,
    port: Option<u16>,
}

/// Upper-cases the letters of `s` picked by the bits of `seed`.
pub(super) fn mixed_case(s: &str, seed: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if seed >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

impl Pattern {
    pub(super) fn render(&self, seed: u64) -> String {
        let mut out = String::new();
        if let Some(s) = self.scheme {
            out.push_str(s.name());
            out.push_str("://");
        }
        if self.wildcard {
            out.push_str("*.");
        }
        out.push_str(&self.labels.join("."));
        match self.ports {
            Ports::Default => {}
            Ports::Any => out.push_str(":*"),
            Ports::Exact(p) => out.push_str(&format!(":{p}")),
        }
        if self.trailing_slash {
            out.push('/');
        }
        mixed_case(&out, seed)
    }

    /// The rules, written out: scheme (none means http or https), port (none means the
    /// scheme's default, `*` any), host (exact, or `*.` over one or more further labels).
    pub(super) fn admits(&self, origin: &Origin) -> bool {
        let scheme_ok = self.scheme.is_none_or(|s| s == origin.scheme);
        let port = origin.port.unwrap_or(origin.scheme.default_port());
        let port_ok = match self.ports {
            Ports::Default => port == origin.scheme.default_port(),
            Ports::Any => true,
            Ports::Exact(p) => port == p,
        };
        let host_ok = if self.wildcard {
            origin.labels.len() > self.labels.len() && origin.labels.ends_with(&self.labels)
        } else {
            origin.labels == self.labels
        };
        scheme_ok && port_ok && host_ok
    }
}

impl Origin {
    pub(super) fn render(&self, seed: u64) -> String {
        let mut out = format!("{}://{}", self.scheme.name(), self.labels.join("."));
        if let Some(p) = self.port {
            out.push_str(&format!(":{p}"));
        }
        mixed_case(&out, seed)
    }
}

pub(super) const LABELS: &[&str] = &[
    "example",
    "com",
    "org",
    "evil",
    "evil-example",
    "evilexample",
    "examplecom",
    "maps",
    "a",
    "b",
    "x1",
    "localhost",
];

pub(super) fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(LABELS).prop_map(str::to_owned),
        1 => "[a-z][a-z0-9-]{0,5}[a-z0-9]",
    ]
}

pub(super) fn scheme() -> impl Strategy<Value = Scheme> {
    prop_oneof![Just(Scheme::Http), Just(Scheme::Https)]
}

pub(super) const PORTS: &[u16] = &[80, 443, 3000, 8080, 8443];

pub(super) fn pattern() -> impl Strategy<Value = Pattern> {
    (
        proptest::option::of(scheme()),
        any::<bool>(),
        proptest::collection::vec(label(), 1..4),
        prop_oneof![
            2 => Just(Ports::Default),
            1 => Just(Ports::Any),
            1 => select(PORTS).prop_map(Ports::Exact),
        ],
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(scheme, wildcard, mut labels, ports, trailing_slash)| {
            if wildcard && labels.len() < 2 {
                labels.push("com".to_owned());
            }
            Pattern {
                scheme,
                wildcard,
                labels,
                ports,
                trailing_slash,
            }
        })
}

/// An origin `pattern` admits, by construction.
pub(super) fn admitted_by(pattern: Pattern) -> impl Strategy<Value = Origin> {
    let scheme = match pattern.scheme {
        Some(s) => Just(s).boxed(),
        None => scheme().boxed(),
    };
    let min_front = usize::from(pattern.wildcard);
    (
        scheme,
        proptest::collection::vec(label(), min_front..min_front + 2),
        select(PORTS),
        any::<bool>(),
    )
        .prop_map(move |(scheme, mut front, any_port, explicit)| {
            if !pattern.wildcard {
                front.clear();
            }
            front.extend(pattern.labels.iter().cloned());
            let default = scheme.default_port();
            let port = match pattern.ports {
                Ports::Default => explicit.then_some(default),
                Ports::Any => Some(any_port),
                Ports::Exact(p) if p == default && !explicit => None,
                Ports::Exact(p) => Some(p),
            };
            Origin {
                scheme,
                labels: front,
                port,
            }
        })
}

/// Patterns and an origin that is often admitted by one of them, or nearly so.
pub(super) fn patterns_and_origin() -> impl Strategy<Value = (Vec<Pattern>, Origin)> {
    proptest::collection::vec(pattern(), 1..4).prop_flat_map(|patterns| {
        let near = select(patterns.clone());
        let hosts = prop_oneof![
            // The pattern's own host, maybe with labels in front.
            near.clone().prop_flat_map(|p| {
                proptest::collection::vec(label(), 0..3).prop_map(move |mut front| {
                    front.extend(p.labels.iter().cloned());
                    front
                })
            }),
            // The pattern's host with one label changed or glued to its neighbour.
            (
                near.clone(),
                label(),
                any::<prop::sample::Index>(),
                any::<bool>()
            )
                .prop_map(|(p, l, at, glue)| {
                    let mut labels = p.labels.clone();
                    let i = at.index(labels.len());
                    if glue && i + 1 < labels.len() {
                        let joined = format!("{}{}", labels[i], labels[i + 1]);
                        labels.splice(i..=i + 1, [joined]);
                    } else {
                        labels[i] = l;
                    }
                    labels
                }),
            // Anything.
            proptest::collection::vec(label(), 1..5),
        ];
        let nearby = (scheme(), hosts, proptest::option::of(select(PORTS))).prop_map(
            |(scheme, labels, port)| Origin {
                scheme,
                labels,
                port,
            },
        );
        let origin = prop_oneof![
            1 => near.prop_flat_map(admitted_by),
            2 => nearby,
        ];
        (Just(patterns), origin)
    })
}
