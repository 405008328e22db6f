//! The gate a metadata filter passes before tantivy's query parser sees it.
//!
//! Tantivy's query grammar is a backtracking parser: its time doubles with each level of nested
//! parentheses (30 levels, 61 bytes, kept a core busy for minutes) and 2,000 levels overflow the
//! stack, which aborts the whole process; a filter that ORs 400,000 terms took 3 GB to parse and
//! run (issue 21). A filter is data from the network, so it is measured here first, in one
//! linear scan that needs no stack: its length, its nesting depth, its terms and its ranges,
//! each against a documented limit ([`FilterLimits`]). What passes parses in well under a
//! millisecond and runs in bounded memory (docs/RELIABILITY.md, "Filters").

use crate::{Error, Result};

/// The limits a filter must keep. [`FilterLimits::default`] is what the CLI, the library and
/// the server apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterLimits {
    /// Longest filter, in bytes. Default 16 KiB: a hundred `id:"..."` clauses of long paths.
    pub max_bytes: usize,
    /// Deepest nesting of parentheses. Default 8 (parse time doubles with each level).
    pub max_depth: usize,
    /// Most terms (words, each word of a phrase, each member of an `IN [...]` set). Default 256.
    pub max_terms: usize,
    /// Most ranges and sets (`[a TO b]`, `{a TO b}`, `>x`, `>=x`, `<x`, `<=x`, `IN [...]`).
    /// Default 16.
    pub max_ranges: usize,
    /// Most parsing work: each byte weighs 2^(the parentheses around it), as the parser reads
    /// what is inside a group once more for each level around it (measured: 256 terms inside 8
    /// levels took 44 ms, inside 6 levels 13 ms). Default 65,536: about 10 ms at worst.
    pub max_cost: u64,
}

impl Default for FilterLimits {
    fn default() -> Self {
        FilterLimits {
            max_bytes: 16 * 1024,
            max_depth: 8,
            max_terms: 256,
            max_ranges: 16,
            max_cost: 1 << 16,
        }
    }
}

/// What [`measure`] found in a filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterShape {
    /// Length in bytes.
    pub bytes: usize,
    /// Deepest nesting of parentheses.
    pub depth: usize,
    /// Terms: words outside operators, words inside phrases, members of sets (not the bounds
    /// of ranges).
    pub terms: usize,
    /// Ranges, comparisons and sets.
    pub ranges: usize,
    /// Parsing work: the sum over bytes of 2^(parentheses around the byte).
    pub cost: u64,
}

/// Measures `filter` in one pass. Unbalanced parentheses and quotes are left to the parser to
/// report (it names the position); here they only stop counting depth below zero.
pub fn measure(filter: &str) -> FilterShape {
    let mut shape = FilterShape {
        bytes: filter.len(),
        ..FilterShape::default()
    };
    let mut depth = 0usize;
    let mut chars = filter.chars().peekable();
    // Inside `[...]` or `{...}`: a range (its bounds are not terms) or a set (`IN [...]`: its
    // members are).
    let mut brackets: Option<Brackets> = None;
    // The word after `>`/`<` is a bound, not a term.
    let mut bound_next = false;
    // The last word ended was `IN`.
    let mut after_in = false;
    let mut word = String::new();
    let end_word = |word: &mut String,
                    shape: &mut FilterShape,
                    brackets: Option<Brackets>,
                    bound_next: &mut bool,
                    after_in: &mut bool| {
        if word.is_empty() {
            return;
        }
        // A field name (`tags:`) is not a term; the value after the colon is.
        let value = word.rsplit_once(':').map_or(word.as_str(), |(_, v)| v);
        *after_in = value == "IN";
        let operator = matches!(value, "AND" | "OR" | "NOT" | "IN" | "TO" | "&&" | "||");
        if !value.is_empty() && !operator {
            if *bound_next {
                *bound_next = false;
            } else if brackets != Some(Brackets::Range) {
                shape.terms += 1;
            }
        }
        word.clear();
    };
    macro_rules! end {
        () => {
            end_word(
                &mut word,
                &mut shape,
                brackets,
                &mut bound_next,
                &mut after_in,
            )
        };
    }
    while let Some(c) = chars.next() {
        shape.cost = shape.cost.saturating_add(1u64 << depth.min(62));
        match c {
            '\\' => {
                // An escaped character belongs to the word.
                word.push(c);
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            '"' => {
                end!();
                // A phrase: each of its words is a term.
                let mut in_word = false;
                while let Some(p) = chars.next() {
                    match p {
                        '"' => break,
                        p if p.is_whitespace() => in_word = false,
                        p => {
                            if p == '\\' {
                                chars.next();
                            }
                            if !in_word {
                                shape.terms += 1;
                                in_word = true;
                            }
                        }
                    }
                }
            }
            '(' => {
                end!();
                depth += 1;
                shape.depth = shape.depth.max(depth);
            }
            ')' => {
                end!();
                depth = depth.saturating_sub(1);
            }
            '[' | '{' if brackets.is_none() && (word.is_empty() || word.ends_with(':')) => {
                end!();
                brackets = Some(if after_in {
                    Brackets::Set
                } else {
                    Brackets::Range
                });
                shape.ranges += 1;
            }
            ']' | '}' if brackets.is_some() => {
                end!();
                brackets = None;
            }
            '>' | '<' if brackets.is_none() && (word.is_empty() || word.ends_with(':')) => {
                end!();
                shape.ranges += 1;
                bound_next = true;
                if chars.peek() == Some(&'=') {
                    chars.next();
                }
            }
            c if c.is_whitespace() => end!(),
            c => word.push(c),
        }
    }
    end!();
    shape
}

/// What a bracket opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Brackets {
    Range,
    Set,
}

/// Checks `filter` against `limits`: an [`Error::Filter`] saying which limit it passes and by
/// how much, before any parsing.
pub fn check(filter: &str, limits: &FilterLimits) -> Result<()> {
    // The length first: the scan below is linear, but a megabyte filter is refused unread.
    if filter.len() > limits.max_bytes {
        return Err(Error::Filter(format!(
            "the filter is {} bytes; at most {} are accepted",
            filter.len(),
            limits.max_bytes
        )));
    }
    let shape = measure(filter);
    let over = [
        (
            "levels of nested parentheses",
            shape.depth,
            limits.max_depth,
        ),
        ("terms", shape.terms, limits.max_terms),
        ("ranges", shape.ranges, limits.max_ranges),
    ];
    if let Some((what, found, max)) = over.iter().find(|(_, found, max)| found > max) {
        return Err(Error::Filter(format!(
            "the filter has {found} {what}; at most {max} are accepted"
        )));
    }
    if shape.cost > limits.max_cost {
        return Err(Error::Filter(format!(
            "the filter nests too much text too deeply (parsing cost {}, at most {} accepted: \
             each byte counts 2 to the power of the parentheses around it); use fewer levels",
            shape.cost, limits.max_cost
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn shape(filter: &str) -> (usize, usize, usize) {
        let s = measure(filter);
        (s.depth, s.terms, s.ranges)
    }

    #[test]
    fn shapes_count_depth_terms_and_ranges() {
        assert_eq!(shape(""), (0, 0, 0));
        assert_eq!(shape("tags:interview"), (0, 1, 0));
        assert_eq!(shape("tags:interview AND duration:>60"), (0, 1, 1));
        assert_eq!(shape("duration:> 60 b"), (0, 1, 1));
        assert_eq!(shape("duration:[10 TO 20] OR duration:>=5"), (0, 0, 2));
        assert_eq!(shape("((a OR b) AND NOT c)"), (2, 3, 0));
        assert_eq!(shape(r#"title:"the quick fox" a"#), (0, 4, 0));
        assert_eq!(shape(r#"title:"say \"hi\" now""#), (0, 3, 0));
        assert_eq!(shape("tags: IN [a b c]"), (0, 3, 1));
        assert_eq!(shape("id:a\\(b"), (0, 1, 0));
        // Unbalanced parentheses do not count below zero.
        assert_eq!(shape(")) (a"), (1, 1, 0));
    }

    #[test]
    fn limits_refuse_deep_wide_long_and_ranged_filters() {
        let limits = FilterLimits::default();
        assert!(check("tags:a AND (title:b OR title:c)", &limits).is_ok());
        let deep = format!("{}a{}", "(".repeat(9), ")".repeat(9));
        let message = check(&deep, &limits).unwrap_err().to_string();
        assert!(message.contains("9 levels"), "{message}");
        let eight = format!("{}a{}", "(".repeat(8), ")".repeat(8));
        assert!(check(&eight, &limits).is_ok());
        let wide = vec!["t"; 257].join(" OR ");
        let message = check(&wide, &limits).unwrap_err().to_string();
        assert!(message.contains("257 terms"), "{message}");
        let long = "a".repeat(16 * 1024 + 1);
        let message = check(&long, &limits).unwrap_err().to_string();
        assert!(message.contains("16385 bytes"), "{message}");
        let ranged = vec!["duration:>1"; 17].join(" OR ");
        let message = check(&ranged, &limits).unwrap_err().to_string();
        assert!(message.contains("17 ranges"), "{message}");
        // Much text deep inside is refused by its cost; a little is not.
        let heavy = format!(
            "{}{}{}",
            "(".repeat(8),
            vec!["a"; 256].join(" OR "),
            ")".repeat(8)
        );
        let message = check(&heavy, &limits).unwrap_err().to_string();
        assert!(message.contains("parsing cost"), "{message}");
        let light = format!("{}tags:x OR tags:y{}", "(".repeat(8), ")".repeat(8));
        assert!(check(&light, &limits).is_ok());
        // 2,000 levels (issue 21's stack overflow) are refused in linear time.
        let abort = format!("{}a{}", "(".repeat(2000), ")".repeat(2000));
        assert!(check(&abort, &limits).is_err());
    }
}
