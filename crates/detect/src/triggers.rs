//! One Aho-Corasick pass over words that every SQL-injection, prompt-injection or secret pattern needs, so
//! ordinary text skips those regexes entirely.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Fired {
    pub(crate) sqli: bool,
    pub(crate) injection: bool,
    pub(crate) secret: bool,
}

#[derive(Debug, Clone, Copy)]
enum Family {
    Sqli,
    Injection,
    Secret,
}

const SQLI: &[&str] = &[
    "'",
    "\"",
    ";",
    "=",
    "<",
    ">",
    "like",
    "union",
    "sleep",
    "benchmark",
    "waitfor",
    "drop",
    "truncate",
    "grant",
    "revoke",
    "delete",
    "alter",
    "create",
    "exec",
    "load",
    "outfile",
    "dumpfile",
    "information_schema",
    "sys",
    "pg_",
    "sqlite_",
    "mysql.",
    "all_",
    "dba_",
    "user_tables",
    "xp_",
    "extractvalue",
    "updatexml",
    "xmltype",
    "geometrycollection",
    "multipoint",
    "exp",
    "floor",
    "convert",
    "utl_",
    "ctxsys",
    "dbms_",
    "randomblob",
    "copy",
    "openrowset",
    "bulk",
    "/*",
    "--",
    "#",
];

const INJECTION: &[&str] = &[
    "instruction",
    "prompt",
    "rule",
    "directive",
    "guideline",
    "guardrail",
    "constraint",
    "restriction",
    "programming",
    "polic",
    "command",
    "direction",
    "system message",
    "above",
    "before",
    "earlier",
    "previous",
    "prior",
    "been told",
    "from now on",
    "no longer",
    "override",
    "[system",
    "[admin",
    "<|",
    "###",
    "told",
    "you are",
    "anything",
    "mode",
    "jailbr",
    "character",
    "unfiltered",
    "uncensored",
    "unrestricted",
    "filter",
    "limit",
    "censorship",
    "ethic",
    "moral",
    "boundar",
    "safety",
    "dan",
];

const SECRET: &[&str] = &[
    "-----begin",
    "akia",
    "asia",
    "agpa",
    "aida",
    "aroa",
    "anpa",
    "anva",
    "aipa",
    "a3t",
    "aws",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "sk-",
    "sk_",
    "rk_",
    "xox",
    "hooks.slack",
    "aiza",
    "eyj",
    "pass",
    "pwd",
    "key",
    "secret",
    "token",
    "bearer",
    "auth",
];

#[derive(Debug, Clone)]
pub(crate) struct Triggers {
    automaton: AhoCorasick,
    families: Vec<Family>,
}

impl Triggers {
    pub(crate) fn new() -> Result<Triggers, aho_corasick::BuildError> {
        let mut words = Vec::new();
        let mut families = Vec::new();
        for (list, family) in [(SQLI, Family::Sqli), (INJECTION, Family::Injection), (SECRET, Family::Secret)]
        {
            words.extend_from_slice(list);
            families.extend(std::iter::repeat_n(family, list.len()));
        }
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&words)?;
        Ok(Triggers { automaton, families })
    }

    pub(crate) fn scan(&self, text: &str) -> Fired {
        let mut fired = Fired::default();
        for m in self.automaton.find_overlapping_iter(text) {
            match self.families[m.pattern().as_usize()] {
                Family::Sqli => fired.sqli = true,
                Family::Injection => fired.injection = true,
                Family::Secret => fired.secret = true,
            }
            if fired.sqli && fired.injection && fired.secret {
                break;
            }
        }
        fired
    }
}
