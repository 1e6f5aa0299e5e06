//! Label selectors for `GET /v2/apps?label=…` (marathon-api.md §4): `k`, `k==v`,
//! `k!=v`, `k in (a,b)`, `k notin (a,b)`; terms separated by `,` are ANDed.
//!
//! Words are runs of characters other than whitespace and `, ( ) = !`; a backslash
//! escapes the next character (`a\,b`). A single `=` is read as `==`.
//!
//! As in Marathon's `LabelSelector`, every term requires the key to be present:
//! `k!=v` and `k notin (…)` do not match an app without label `k`.
//! A malformed selector is a 400-class [`SelectorError`].

use std::collections::BTreeMap;

/// Longest selector accepted (characters); a named limit against abuse.
pub const SELECTOR_CHARS_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("Invalid label selector '{input}': {reason}")]
    Invalid { input: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectorOp {
    Exists,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorTerm {
    pub key: String,
    pub op: SelectorOp,
}

/// A parsed selector: all terms must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    pub terms: Vec<SelectorTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Comma,
    Open,
    Close,
    Eq,
    NotEq,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            ',' => out.push(Tok::Comma),
            '(' => out.push(Tok::Open),
            ')' => out.push(Tok::Close),
            '=' => {
                chars.next_if_eq(&'=');
                out.push(Tok::Eq);
            }
            '!' => {
                if chars.next_if_eq(&'=').is_none() {
                    return Err("expected '=' after '!'".into());
                }
                out.push(Tok::NotEq);
            }
            first => {
                let mut word = String::new();
                let mut c = first;
                loop {
                    if c == '\\' {
                        word.push(chars.next().ok_or("dangling '\\'")?);
                    } else {
                        word.push(c);
                    }
                    match chars.peek() {
                        Some(&n) if !n.is_whitespace() && !",()=!".contains(n) => {
                            c = n;
                            chars.next();
                        }
                        _ => break,
                    }
                }
                out.push(Tok::Word(word));
            }
        }
    }
    Ok(out)
}

impl LabelSelector {
    /// Parse a selector.
    pub fn parse(input: &str) -> Result<LabelSelector, SelectorError> {
        let err = |reason: String| SelectorError::Invalid {
            input: input.to_string(),
            reason,
        };
        if input.chars().count() > SELECTOR_CHARS_MAX {
            return Err(err(format!("longer than {SELECTOR_CHARS_MAX} characters")));
        }
        let toks = lex(input).map_err(err)?;
        let mut pos = 0;
        let mut terms = Vec::new();
        loop {
            let key = match toks.get(pos) {
                Some(Tok::Word(w)) => w.clone(),
                other => return Err(err(format!("expected a label name, found {}", show(other)))),
            };
            pos += 1;
            let op = match toks.get(pos) {
                None | Some(Tok::Comma) => SelectorOp::Exists,
                Some(Tok::Eq | Tok::NotEq) => {
                    let negate = toks[pos] == Tok::NotEq;
                    pos += 1;
                    let Some(Tok::Word(v)) = toks.get(pos) else {
                        return Err(err(format!(
                            "expected a value, found {}",
                            show(toks.get(pos))
                        )));
                    };
                    pos += 1;
                    if negate {
                        SelectorOp::NotEquals(v.clone())
                    } else {
                        SelectorOp::Equals(v.clone())
                    }
                }
                Some(Tok::Word(w)) if w == "in" || w == "notin" => {
                    let negate = w == "notin";
                    pos += 1;
                    if toks.get(pos) != Some(&Tok::Open) {
                        return Err(err(format!("expected '(', found {}", show(toks.get(pos)))));
                    }
                    pos += 1;
                    let mut values = Vec::new();
                    loop {
                        match toks.get(pos) {
                            Some(Tok::Word(v)) => values.push(v.clone()),
                            other => {
                                return Err(err(format!("expected a value, found {}", show(other))))
                            }
                        }
                        pos += 1;
                        match toks.get(pos) {
                            Some(Tok::Comma) => pos += 1,
                            Some(Tok::Close) => {
                                pos += 1;
                                break;
                            }
                            other => {
                                return Err(err(format!(
                                    "expected ',' or ')', found {}",
                                    show(other)
                                )))
                            }
                        }
                    }
                    if negate {
                        SelectorOp::NotIn(values)
                    } else {
                        SelectorOp::In(values)
                    }
                }
                other => return Err(err(format!("unexpected {}", show(other)))),
            };
            terms.push(SelectorTerm { key, op });
            match toks.get(pos) {
                None => break,
                Some(Tok::Comma) => pos += 1,
                other => return Err(err(format!("expected ',', found {}", show(other)))),
            }
        }
        Ok(LabelSelector { terms })
    }

    /// Whether `labels` satisfy every term.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| {
            let Some(v) = labels.get(&t.key) else {
                return false;
            };
            match &t.op {
                SelectorOp::Exists => true,
                SelectorOp::Equals(x) => v == x,
                SelectorOp::NotEquals(x) => v != x,
                SelectorOp::In(xs) => xs.contains(v),
                SelectorOp::NotIn(xs) => !xs.contains(v),
            }
        })
    }
}

fn show(t: Option<&Tok>) -> String {
    match t {
        None => "end of input".into(),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Comma) => "','".into(),
        Some(Tok::Open) => "'('".into(),
        Some(Tok::Close) => "')'".into(),
        Some(Tok::Eq) => "'=='".into(),
        Some(Tok::NotEq) => "'!='".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    #[test]
    fn parses_every_form() {
        let s = sel("a, b==1, c != 2, d in (x, y), e notin (z)");
        let ops: Vec<&SelectorOp> = s.terms.iter().map(|t| &t.op).collect();
        assert_eq!(
            ops,
            [
                &SelectorOp::Exists,
                &SelectorOp::Equals("1".into()),
                &SelectorOp::NotEquals("2".into()),
                &SelectorOp::In(vec!["x".into(), "y".into()]),
                &SelectorOp::NotIn(vec!["z".into()]),
            ]
        );
        assert_eq!(sel("k=v").terms[0].op, SelectorOp::Equals("v".into()));
        assert_eq!(
            sel(r"k==a\,b").terms[0].op,
            SelectorOp::Equals("a,b".into())
        );
        assert_eq!(sel("in").terms[0].key, "in");
    }

    #[test]
    fn matching_requires_the_key() {
        let l = labels(&[("env", "prod"), ("tier", "web")]);
        assert!(sel("env").matches(&l));
        assert!(sel("env==prod,tier==web").matches(&l));
        assert!(!sel("env==prod,tier==db").matches(&l));
        assert!(sel("env!=dev").matches(&l));
        assert!(!sel("owner!=bob").matches(&l), "absent key never matches");
        assert!(sel("tier in (db, web)").matches(&l));
        assert!(!sel("tier notin (db, web)").matches(&l));
        assert!(sel("tier notin (db)").matches(&l));
        assert!(!sel("missing").matches(&l));
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for bad in [
            "",
            ",",
            "a,",
            "a==",
            "==b",
            "a!b",
            "a in",
            "a in (",
            "a in ()",
            "a in (x",
            "a in (x,)",
            "a b",
            "a==b c",
            "(a)",
            "a\\",
            "a notin x",
        ] {
            let e = LabelSelector::parse(bad);
            assert!(
                matches!(e, Err(SelectorError::Invalid { .. })),
                "{bad}: {e:?}"
            );
        }
        assert!(LabelSelector::parse(&"a,".repeat(3000)).is_err());
    }
}
