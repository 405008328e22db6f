//! The text side of synthesis: a deterministic English sentence generator whose grammar and word
//! lists are written for this project (generated text, Apache-2.0), plus the seeded mixer that
//! every other deterministic choice in `synth` draws from.

use std::collections::HashSet;

/// Sentences shorter than this are regenerated (words counted by whitespace).
pub const MIN_WORDS: usize = 5;
/// Sentences longer than this are regenerated.
pub const MAX_WORDS: usize = 20;

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA
/// 2014). Written out here rather than taken from `rand` so that the corpus, voice choices and
/// split stay byte-identical whatever version of `rand` the workspace moves to.
#[derive(Clone, Debug)]
pub(crate) struct Mixer {
    state: u64,
}

impl Mixer {
    /// A stream seeded by `seed` and a stream index `stream` (e.g. the utterance number).
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut m = Mixer {
            state: seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03),
        };
        m.next_u64();
        m
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is below 2^-40 for our list sizes.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below((hi - lo + 1) as usize) as u32
    }

    /// True with probability `p` percent.
    pub(crate) fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    pub(crate) fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
}

/// `n` distinct sentences of 5 to 20 words, the same for the same `seed`.
///
/// The grammar below yields far more than 10^9 distinct sentences, so duplicates are rare; the
/// ones that do occur are skipped, which keeps the output distinct and still deterministic.
pub fn sentences(seed: u64, n: usize) -> Vec<String> {
    SentenceStream::new(seed).take(n).collect()
}

/// The endless stream behind [`sentences`]: distinct sentences in a fixed order for a seed.
#[derive(Debug)]
pub(crate) struct SentenceStream {
    rng: Mixer,
    seen: HashSet<String>,
}

impl SentenceStream {
    pub(crate) fn new(seed: u64) -> Self {
        SentenceStream {
            rng: Mixer::new(seed, 0x5E47_E4CE),
            seen: HashSet::new(),
        }
    }
}

impl Iterator for SentenceStream {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            let s = sentence(&mut self.rng);
            let words = s.split_whitespace().count();
            if (MIN_WORDS..=MAX_WORDS).contains(&words) && self.seen.insert(s.clone()) {
                return Some(s);
            }
        }
    }
}

fn sentence(r: &mut Mixer) -> String {
    let body = match r.below(12) {
        0 => format!("{} {} {}{}", np(r), past(r), np(r), tail(r)),
        1 => format!("{} will {} {}{}", np(r), base(r), np(r), tail(r)),
        2 => format!("{} {} {}", time(r), clause(r), place(r)),
        3 => format!("{}, {}", question(r), name(r)),
        4 => format!("{} said that {}", name(r), clause(r)),
        5 => format!("if {}, {} will {} {}", clause(r), np(r), base(r), np(r)),
        6 => format!(
            "there are {} {} {} {}",
            r.pick(&NUMBERS[1..]),
            r.pick(ADJECTIVES),
            plural(r),
            place(r)
        ),
        7 => format!("{} and {}", clause(r), clause(r)),
        8 => format!("please {} {} {}", base(r), np(r), place(r)),
        9 => format!(
            "the {} {} was {} {}",
            r.pick(ADJECTIVES),
            r.pick(NOUNS),
            r.pick(ADJECTIVES),
            time(r)
        ),
        10 => format!(
            "{} {} {} {} {}",
            name(r),
            r.pick(ADVERBS),
            past(r),
            np(r),
            time(r)
        ),
        _ => format!(
            "we need {} {} for the {} {}",
            r.pick(&NUMBERS[1..]),
            plural(r),
            r.pick(NOUNS),
            place(r)
        ),
    };
    let end = if QUESTION_MARKERS.iter().any(|q| body.starts_with(q)) {
        '?'
    } else if r.percent(8) {
        '!'
    } else {
        '.'
    };
    let mut chars = body.chars();
    match chars.next() {
        Some(first) => format!("{}{}{end}", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

const QUESTION_MARKERS: [&str; 5] = ["why ", "when ", "where ", "how ", "did "];

fn clause(r: &mut Mixer) -> String {
    if r.percent(50) {
        format!("{} {} {}", np(r), past(r), np(r))
    } else {
        format!("{} {} {}", name(r), past(r), np(r))
    }
}

fn question(r: &mut Mixer) -> String {
    match r.below(4) {
        0 => format!("why did {} {} {}", np(r), base(r), np(r)),
        1 => format!("when will you {} {}", base(r), np(r)),
        2 => format!("where did {} {} {}", name(r), base(r), np(r)),
        _ => format!(
            "how did {} {} {} so {}",
            np(r),
            base(r),
            np(r),
            r.pick(QUICKLY)
        ),
    }
}

fn np(r: &mut Mixer) -> String {
    let det = r.pick(DETERMINERS);
    if r.percent(55) {
        format!("{det} {} {}", r.pick(ADJECTIVES), r.pick(NOUNS))
    } else {
        format!("{det} {}", r.pick(NOUNS))
    }
}

fn plural(r: &mut Mixer) -> String {
    let noun = r.pick(NOUNS);
    if noun.ends_with('s') || noun.ends_with("ch") || noun.ends_with("sh") || noun.ends_with('x') {
        format!("{noun}es")
    } else if let Some(stem) = noun
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'o']))
    {
        format!("{stem}ies")
    } else {
        format!("{noun}s")
    }
}

fn tail(r: &mut Mixer) -> String {
    match r.below(4) {
        0 => String::new(),
        1 => format!(" {}", place(r)),
        2 => format!(" {}", time(r)),
        _ => format!(" {} {}", r.pick(QUICKLY), place(r)),
    }
}

fn place(r: &mut Mixer) -> String {
    format!("{} the {}", r.pick(PREPOSITIONS), r.pick(PLACES))
}

fn time(r: &mut Mixer) -> String {
    match r.below(3) {
        0 => r.pick(TIMES).to_string(),
        1 => format!("on {}", r.pick(DAYS)),
        _ => format!("at {} o'clock", r.pick(&NUMBERS[..12])),
    }
}

fn name(r: &mut Mixer) -> &'static str {
    r.pick(NAMES)
}

fn past(r: &mut Mixer) -> &'static str {
    VERBS[r.below(VERBS.len())].1
}

fn base(r: &mut Mixer) -> &'static str {
    VERBS[r.below(VERBS.len())].0
}

const DETERMINERS: &[&str] = &[
    "the", "a", "my", "your", "our", "their", "this", "that", "every", "one", "her", "his",
];

const ADJECTIVES: &[&str] = &[
    "old", "new", "small", "large", "quiet", "noisy", "bright", "dark", "green", "yellow", "red",
    "blue", "heavy", "light", "warm", "cold", "empty", "crowded", "ancient", "modern", "careful",
    "clever", "gentle", "strange", "famous", "hidden", "wooden", "metal", "broken", "shiny",
    "narrow", "wide", "tired", "happy", "angry", "curious", "patient", "golden", "silver",
    "frozen", "sudden", "distant", "friendly", "serious", "simple", "rare", "fresh", "dusty",
];

const NOUNS: &[&str] = &[
    "teacher",
    "doctor",
    "farmer",
    "pilot",
    "driver",
    "painter",
    "student",
    "neighbor",
    "captain",
    "baker",
    "engineer",
    "musician",
    "sailor",
    "soldier",
    "nurse",
    "lawyer",
    "gardener",
    "writer",
    "dog",
    "cat",
    "horse",
    "bird",
    "fox",
    "rabbit",
    "whale",
    "bridge",
    "river",
    "mountain",
    "village",
    "market",
    "window",
    "letter",
    "package",
    "computer",
    "bicycle",
    "train",
    "boat",
    "camera",
    "garden",
    "kitchen",
    "library",
    "museum",
    "festival",
    "concert",
    "report",
    "question",
    "answer",
    "picture",
    "story",
    "machine",
    "engine",
    "lamp",
    "table",
    "chair",
    "basket",
    "bottle",
    "ticket",
    "key",
    "map",
    "clock",
    "song",
    "plan",
    "idea",
    "message",
    "recipe",
    "journey",
    "storm",
    "island",
    "forest",
    "valley",
    "harbor",
    "tower",
    "castle",
    "signal",
    "battery",
    "blanket",
    "candle",
    "coin",
    "diamond",
    "envelope",
    "feather",
    "hammer",
    "jacket",
    "ladder",
    "mirror",
    "needle",
    "orange",
    "pencil",
    "pocket",
    "ribbon",
    "shovel",
    "telescope",
    "umbrella",
    "violin",
    "wagon",
    "box",
    "church",
    "brush",
    "tax",
];

const PLACES: &[&str] = &[
    "station",
    "old bridge",
    "corner shop",
    "city hall",
    "north gate",
    "harbor",
    "school",
    "hospital",
    "airport",
    "farm",
    "bakery",
    "stadium",
    "park",
    "beach",
    "hotel",
    "office",
    "factory",
    "library",
    "village square",
    "garden",
    "market",
    "river bank",
    "post office",
    "train platform",
    "mountain road",
    "tunnel",
    "laboratory",
    "theater",
    "restaurant",
    "lake",
];

const PREPOSITIONS: &[&str] = &[
    "near",
    "behind",
    "inside",
    "outside",
    "across",
    "beside",
    "under",
    "above",
    "at",
    "past",
    "toward",
    "around",
    "beyond",
    "in front of",
    "next to",
];

/// (base form, past tense).
const VERBS: &[(&str, &str)] = &[
    ("find", "found"),
    ("carry", "carried"),
    ("paint", "painted"),
    ("open", "opened"),
    ("close", "closed"),
    ("build", "built"),
    ("break", "broke"),
    ("repair", "repaired"),
    ("move", "moved"),
    ("watch", "watched"),
    ("follow", "followed"),
    ("bring", "brought"),
    ("sell", "sold"),
    ("buy", "bought"),
    ("hide", "hid"),
    ("clean", "cleaned"),
    ("describe", "described"),
    ("forget", "forgot"),
    ("remember", "remembered"),
    ("visit", "visited"),
    ("catch", "caught"),
    ("lift", "lifted"),
    ("pull", "pulled"),
    ("push", "pushed"),
    ("borrow", "borrowed"),
    ("deliver", "delivered"),
    ("measure", "measured"),
    ("photograph", "photographed"),
    ("study", "studied"),
    ("draw", "drew"),
    ("lose", "lost"),
    ("choose", "chose"),
    ("send", "sent"),
    ("keep", "kept"),
    ("check", "checked"),
    ("explain", "explained"),
    ("wrap", "wrapped"),
    ("count", "counted"),
    ("test", "tested"),
    ("admire", "admired"),
];

const ADVERBS: &[&str] = &[
    "quietly",
    "finally",
    "suddenly",
    "already",
    "nearly",
    "proudly",
    "slowly",
    "gladly",
    "secretly",
    "carefully",
    "never",
    "always",
    "often",
    "rarely",
    "happily",
    "barely",
];

const QUICKLY: &[&str] = &[
    "quickly",
    "slowly",
    "carefully",
    "loudly",
    "gently",
    "badly",
    "easily",
    "calmly",
];

const TIMES: &[&str] = &[
    "yesterday",
    "today",
    "tomorrow",
    "last week",
    "this morning",
    "in the evening",
    "after lunch",
    "before dawn",
    "at midnight",
    "next year",
    "in the spring",
    "during the winter",
    "last summer",
    "this afternoon",
    "every day",
    "once a month",
    "in the autumn",
    "at noon",
];

const DAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

const NUMBERS: &[&str] = &[
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "fifteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "a hundred",
    "two hundred",
    "a thousand",
    "several",
    "many",
    "a few",
    "some",
];

const NAMES: &[&str] = &[
    "Anna", "Peter", "Maria", "James", "Olivia", "Daniel", "Sofia", "Thomas", "Emma", "Lucas",
    "Grace", "Henry", "Chloe", "Samuel", "Nora", "Oscar", "Ruth", "Victor", "Alice", "Martin",
    "Helen", "George", "Irene", "Felix", "Laura", "Simon", "Clara", "Hugo", "Ella", "Adam",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_counts_are_in_range() {
        for s in sentences(7, 2_000) {
            let n = s.split_whitespace().count();
            assert!((MIN_WORDS..=MAX_WORDS).contains(&n), "{n} words: {s}");
        }
    }

    #[test]
    fn plurals() {
        let mut r = Mixer::new(1, 1);
        for _ in 0..500 {
            let p = plural(&mut r);
            assert!(
                !p.ends_with("ys") || p.ends_with("ays") || p.ends_with("eys"),
                "{p}"
            );
        }
    }
}
