//! The trigger pass's automaton as one dense, case-folding transition table.
//!
//! The pass takes one dependent table load per byte, so its speed is the length of that chain: here a byte's
//! class (upper-case letters share their lower-case letter's), one add and one masked load, with a match
//! being any state at or above one number. The aho-corasick DFA it is built from answers the same question
//! with a bounds check, a special-state test and a case-insensitive alphabet twice as wide.

use std::collections::HashMap;

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;

#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// `next[state + class[byte]]` is the next state. States are premultiplied by the stride (a power of two)
    /// and the table is padded to a power of two, so an index masked with `mask` is always in range.
    next: Box<[u32]>,
    mask: usize,
    class: [u8; 256],
    start: u32,
    /// Match states are numbered last: a state matches when it is at least this.
    match_from: u32,
    shift: u32,
    /// The DFA's own id of each match state, by `(state - match_from) >> shift`.
    matches: Vec<StateID>,
}

/// Why the table could not be built (the DFA has no unanchored start).
#[derive(Debug, thiserror::Error)]
#[error("trigger automaton: {0}")]
pub(crate) struct TableError(String);

impl Table {
    /// The table of `dfa`, an unanchored, case-sensitive DFA over the lower-case `words`.
    pub(crate) fn new(dfa: &DFA, words: &[&str]) -> Result<Table, TableError> {
        // A class per byte that occurs in a word; every other byte (and no state tells them apart) is class 0.
        let mut class = [0u8; 256];
        let mut representative = vec![];
        for b in words.iter().flat_map(|w| w.bytes()) {
            if b.is_ascii_uppercase() {
                return Err(TableError(format!("word with an upper-case letter: {b:#x}")));
            }
            if class[usize::from(b)] == 0 {
                representative.push(b);
                class[usize::from(b)] = u8::try_from(representative.len())
                    .map_err(|_| TableError("more than 255 distinct bytes".to_owned()))?;
            }
        }
        let other = (0..=255u8)
            .find(|&b| class[usize::from(b)] == 0 && class[usize::from(b.to_ascii_lowercase())] == 0)
            .ok_or_else(|| TableError("no byte outside the words".to_owned()))?;
        representative.insert(0, other);
        for b in b'A'..=b'Z' {
            class[usize::from(b)] = class[usize::from(b.to_ascii_lowercase())];
        }
        let shift = representative.len().next_power_of_two().trailing_zeros();

        // Every state reachable from the start, in breadth-first order.
        let start = dfa.start_state(Anchored::No).map_err(|e| TableError(e.to_string()))?;
        let mut order = vec![start];
        let mut index = HashMap::from([(start, 0usize)]);
        let mut i = 0;
        while i < order.len() {
            for &b in &representative {
                let next = dfa.next_state(Anchored::No, order[i], b);
                index.entry(next).or_insert_with(|| {
                    order.push(next);
                    order.len() - 1
                });
            }
            i += 1;
        }
        // Renumber: states that do not match first, then those that do.
        let (plain, matching): (Vec<StateID>, Vec<StateID>) = order.iter().partition(|&&s| !dfa.is_match(s));
        let number: HashMap<StateID, u32> = plain
            .iter()
            .chain(&matching)
            .enumerate()
            .map(|(n, &s)| u32::try_from(n << shift).map(|v| (s, v)))
            .collect::<Result<_, _>>()
            .map_err(|_| TableError("too many states".to_owned()))?;
        let len = (order.len() << shift).next_power_of_two();
        let mut next = vec![0u32; len];
        for (&s, &n) in &number {
            for (c, &b) in representative.iter().enumerate() {
                next[n as usize + c] = number[&dfa.next_state(Anchored::No, s, b)];
            }
        }
        Ok(Table {
            next: next.into_boxed_slice(),
            mask: len - 1,
            class,
            start: number[&start],
            match_from: u32::try_from(plain.len() << shift).unwrap_or(u32::MAX),
            shift,
            matches: matching,
        })
    }

    pub(crate) fn start(&self) -> u32 {
        self.start
    }

    /// The transitions and the class map, for a loop to hold in locals.
    pub(crate) fn parts(&self) -> Parts<'_> {
        Parts {
            next: &self.next[..=self.mask],
            mask: self.mask,
            class: &self.class,
            match_from: self.match_from,
        }
    }

    /// The DFA's id of the match state `state`.
    pub(crate) fn dfa_state(&self, state: u32) -> StateID {
        self.matches[((state - self.match_from) >> self.shift) as usize]
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    next: &'a [u32],
    mask: usize,
    class: &'a [u8; 256],
    match_from: u32,
}

impl Parts<'_> {
    #[inline(always)]
    pub(crate) fn step(self, state: u32, byte: u8) -> u32 {
        self.next[(state as usize + usize::from(self.class[usize::from(byte)])) & self.mask]
    }

    #[inline(always)]
    pub(crate) fn is_match(self, state: u32) -> bool {
        state >= self.match_from
    }
}

#[cfg(test)]
mod tests {
    use aho_corasick::{MatchKind, StartKind};

    use super::*;

    /// The table walks the same states as the DFA it was built from, over mixed-case text and every byte.
    #[test]
    fn follows_the_dfa_case_insensitively() {
        let words = ["union", "or", "/**/", "-----begin", "exp", "sys."];
        let dfa = aho_corasick::dfa::Builder::new()
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .build(words)
            .unwrap();
        let table = Table::new(&dfa, &words).unwrap();
        let parts = table.parts();
        let mut text: Vec<u8> = b"x UNION or Or /**/ -----BEGIN Exp sYs. sys, unio\xff\x00".to_vec();
        text.extend(0..=255u8);
        let (mut ours, mut theirs) = (table.start(), dfa.start_state(Anchored::No).unwrap());
        for &b in &text {
            ours = parts.step(ours, b);
            theirs = dfa.next_state(Anchored::No, theirs, b.to_ascii_lowercase());
            assert_eq!(parts.is_match(ours), dfa.is_match(theirs), "byte {b:#x}");
            if parts.is_match(ours) {
                assert_eq!(table.dfa_state(ours), theirs);
            }
        }
    }

    #[test]
    fn refuses_upper_case_words() {
        let dfa = aho_corasick::dfa::DFA::new(["Union"]).unwrap();
        assert!(Table::new(&dfa, &["Union"]).is_err());
    }
}
