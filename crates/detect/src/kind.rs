//! The vocabulary of findings: what was found (`Kind`), its family (`Category`) and which check confirmed it
//! (`Validator`). The snake_case names are a stable contract: policies and audit records use them.

use std::fmt;
use std::str::FromStr;

/// The family a kind belongs to; categories can be switched on and off as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Pii,
    Sqli,
    PromptInjection,
    Secret,
}

impl Category {
    pub const ALL: [Category; 4] =
        [Category::Pii, Category::Sqli, Category::PromptInjection, Category::Secret];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Pii => "pii",
            Category::Sqli => "sqli",
            Category::PromptInjection => "prompt_injection",
            Category::Secret => "secret",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! kinds {
    ($( $variant:ident => $name:literal, $category:ident; )*) => {
        /// What a finding is. `as_str` gives the stable snake_case name used by policies and audit records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Kind {
            $( $variant, )*
        }

        impl Kind {
            const ALL: &'static [Kind] = &[ $( Kind::$variant, )* ];

            /// Every kind, in declaration order (PII, SQL injection, prompt injection, secrets).
            pub fn all() -> &'static [Kind] {
                Kind::ALL
            }

            /// The stable snake_case name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Kind::$variant => $name, )*
                }
            }

            pub fn category(self) -> Category {
                match self {
                    $( Kind::$variant => Category::$category, )*
                }
            }
        }

        impl FromStr for Kind {
            type Err = UnknownKind;

            fn from_str(s: &str) -> Result<Kind, UnknownKind> {
                match s {
                    $( $name => Ok(Kind::$variant), )*
                    _ => Err(UnknownKind),
                }
            }
        }
    };
}

kinds! {
    Ssn => "ssn", Pii;
    CreditCard => "credit_card", Pii;
    Email => "email", Pii;
    Phone => "phone", Pii;
    IpAddress => "ip_address", Pii;
    Iban => "iban", Pii;
    UsBankRouting => "us_bank_routing", Pii;
    BankAccount => "bank_account", Pii;
    Passport => "passport", Pii;
    DriverLicense => "driver_license", Pii;
    DateOfBirth => "date_of_birth", Pii;
    MedicalRecordNumber => "medical_record_number", Pii;
    UkNino => "uk_nino", Pii;
    UkNhs => "uk_nhs", Pii;
    CaSin => "ca_sin", Pii;
    InPan => "in_pan", Pii;
    Aadhaar => "aadhaar", Pii;
    UpiId => "upi_id", Pii;
    Gstin => "gstin", Pii;

    UnionBased => "union_based", Sqli;
    BooleanBlind => "boolean_blind", Sqli;
    TimeBased => "time_based", Sqli;
    ErrorBased => "error_based", Sqli;
    StackedQueries => "stacked_queries", Sqli;
    CommentInjection => "comment_injection", Sqli;
    DangerousQuery => "dangerous_query", Sqli;
    FileAccess => "file_access", Sqli;
    SystemCatalog => "system_catalog", Sqli;

    InstructionOverride => "instruction_override", PromptInjection;
    SystemPromptExtraction => "system_prompt_extraction", PromptInjection;
    Jailbreak => "jailbreak", PromptInjection;
    EncodedPayload => "encoded_payload", PromptInjection;
    UnicodeSmuggling => "unicode_smuggling", PromptInjection;

    AwsAccessKeyId => "aws_access_key_id", Secret;
    AwsSecretAccessKey => "aws_secret_access_key", Secret;
    GithubToken => "github_token", Secret;
    OpenaiApiKey => "openai_api_key", Secret;
    AnthropicApiKey => "anthropic_api_key", Secret;
    SlackToken => "slack_token", Secret;
    StripeKey => "stripe_key", Secret;
    GoogleApiKey => "google_api_key", Secret;
    Jwt => "jwt", Secret;
    PrivateKey => "private_key", Secret;
    PasswordAssignment => "password_assignment", Secret;
    ApiKeyAssignment => "api_key_assignment", Secret;
    TokenAssignment => "token_assignment", Secret;
}

impl Kind {
    /// Index into per-kind tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) const COUNT: usize = Kind::ALL.len();
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Kind::from_str` was given a name that is not a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownKind;

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown detection kind")
    }
}

impl std::error::Error for UnknownKind {}

/// The structural or checksum test a finding passed, beyond matching its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Validator {
    /// US SSN area/group/serial rules (no 000/666/9xx area, no 00 group, no 0000 serial).
    SsnRules,
    /// Luhn check digit and a known card brand prefix and length.
    LuhnBrand,
    /// Luhn check digit (Canadian SIN).
    Luhn,
    /// ISO 13616 mod-97 and the country's IBAN length.
    Mod97,
    /// ABA routing number 3-7-1 weighted checksum.
    AbaChecksum,
    /// NHS number mod-11 check digit.
    Mod11,
    /// Verhoeff check digit (Aadhaar).
    Verhoeff,
    /// GSTIN base-36 check character, embedded PAN and state code.
    GstinChecksum,
    /// India PAN structure (holder-type letter).
    PanStructure,
    /// UK NINO prefix and suffix rules.
    NinoRules,
    /// North American numbering plan or E.164 length and country code.
    PhoneNumbering,
    /// A syntactically valid address with a plausible top-level domain.
    EmailSyntax,
    /// Parsed as an IPv4 or IPv6 address.
    IpParse,
    /// A real calendar date in a plausible range.
    CalendarDate,
    /// A known UPI payment handle.
    UpiHandle,
    /// The SQL condition is a tautology (`1=1`, `'a'='a'`).
    Tautology,
    /// A DELETE or UPDATE with no WHERE clause.
    MissingWhere,
    /// The payload decoded from base64 or hex holds an attack.
    DecodedPayload,
    /// The text matched only after Unicode normalisation (NFKC, invisible characters removed, homoglyphs folded).
    Normalized,
    /// The JWT header decodes to JSON naming an algorithm.
    JwtHeader,
    /// A context keyword names the value ("routing number", "passport no").
    Context,
}

impl Validator {
    pub fn as_str(self) -> &'static str {
        match self {
            Validator::SsnRules => "ssn_rules",
            Validator::LuhnBrand => "luhn_brand",
            Validator::Luhn => "luhn",
            Validator::Mod97 => "mod97",
            Validator::AbaChecksum => "aba_checksum",
            Validator::Mod11 => "mod11",
            Validator::Verhoeff => "verhoeff",
            Validator::GstinChecksum => "gstin_checksum",
            Validator::PanStructure => "pan_structure",
            Validator::NinoRules => "nino_rules",
            Validator::PhoneNumbering => "phone_numbering",
            Validator::EmailSyntax => "email_syntax",
            Validator::IpParse => "ip_parse",
            Validator::CalendarDate => "calendar_date",
            Validator::UpiHandle => "upi_handle",
            Validator::Tautology => "tautology",
            Validator::MissingWhere => "missing_where",
            Validator::DecodedPayload => "decoded_payload",
            Validator::Normalized => "normalized",
            Validator::JwtHeader => "jwt_header",
            Validator::Context => "context",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &kind in Kind::all() {
            assert!(seen.insert(kind.as_str()), "duplicate name {kind}");
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
            assert_eq!(kind.index(), Kind::all().iter().position(|k| *k == kind).unwrap());
        }
        assert_eq!("nope".parse::<Kind>(), Err(UnknownKind));
    }

    #[test]
    fn categories() {
        assert_eq!(Kind::Ssn.category(), Category::Pii);
        assert_eq!(Kind::UnionBased.category(), Category::Sqli);
        assert_eq!(Kind::Jailbreak.category(), Category::PromptInjection);
        assert_eq!(Kind::PrivateKey.category(), Category::Secret);
    }
}
