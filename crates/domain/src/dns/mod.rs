//! DNS zones and records: the rules a customer's record must pass before it
//! reaches PowerDNS, and the records a new hosting zone starts with.
//!
//! Names here are absolute, lower-case ASCII and end with a dot
//! (`www.example.test.`); IDNA is handled before (A-labels come in).
//! Record contents are in PowerDNS's presentation format, exactly as its
//! HTTP API takes and returns them (`10 mail.example.test.`,
//! `"v=spf1 mx a ~all"`).

mod names;
mod records;
mod txt;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use names::{canonical_name, canonical_target, canonical_zone};
pub use records::validate_rrset;

/// The TTL a record set gets when none (0) is given, in seconds.
pub const DEFAULT_TTL: u32 = 3600;
/// The smallest TTL a customer may set, in seconds.
pub const MIN_TTL: u32 = 60;
/// The largest TTL a customer may set, in seconds (one day).
pub const MAX_TTL: u32 = 86_400;
/// The most records one record set may hold.
pub const MAX_RECORDS: usize = 100;

/// The record types mPanel knows. Customers edit all but `NS` and `SOA`,
/// which mPanel manages at the zone apex.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
    MX,
    TXT,
    SRV,
    CAA,
    NS,
    SOA,
}

impl RecordType {
    /// Every known type, in declaration order.
    pub const ALL: [Self; 9] = [
        Self::A,
        Self::AAAA,
        Self::CNAME,
        Self::MX,
        Self::TXT,
        Self::SRV,
        Self::CAA,
        Self::NS,
        Self::SOA,
    ];

    /// The type's mnemonic, upper-case, as PowerDNS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::AAAA => "AAAA",
            Self::CNAME => "CNAME",
            Self::MX => "MX",
            Self::TXT => "TXT",
            Self::SRV => "SRV",
            Self::CAA => "CAA",
            Self::NS => "NS",
            Self::SOA => "SOA",
        }
    }

    /// Whether a customer may create, change or delete record sets of this
    /// type (everything but `NS` and `SOA`).
    pub fn customer_editable(self) -> bool {
        !matches!(self, Self::NS | Self::SOA)
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordType {
    type Err = DnsRuleError;

    /// Parses the mnemonic; it must be upper-case (`"AAAA"`, not `"aaaa"`).
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| DnsRuleError::new("type", format!("unknown record type {raw:?}")))
    }
}

/// All records of one name and type (an RRset), as PowerDNS stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    /// Absolute, lower-case, ends with `.`.
    pub name: String,
    pub rtype: RecordType,
    /// Seconds; 0 in input means [`DEFAULT_TTL`].
    pub ttl: u32,
    /// Contents in PowerDNS presentation format.
    pub records: Vec<String>,
}

/// Why a zone name or record set was refused; `field` names the input
/// field (`zone`, `name`, `type`, `ttl`, `records`), `message` says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRuleError {
    pub field: String,
    pub message: String,
}

impl DnsRuleError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for DnsRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for DnsRuleError {}

/// The record sets a new hosting zone starts with: the apex and `www` point
/// (A) at the web server, an SPF TXT at the apex, and, when a mail host is
/// given, an MX 10 to it (e.g. `mail.example.test`).
///
/// `zone` and `mail_host` are taken as given (lower-cased, trailing dot
/// added); pass names that [`canonical_zone`] / [`canonical_target`]
/// accept. Every set returned passes [`validate_rrset`] for valid inputs.
pub fn template_records(zone: &str, web_ipv4: &str, mail_host: Option<&str>) -> Vec<RecordSet> {
    let apex = absolute(zone);
    let set = |name: String, rtype, content: String| RecordSet {
        name,
        rtype,
        ttl: DEFAULT_TTL,
        records: vec![content],
    };
    let mut sets = vec![
        set(apex.clone(), RecordType::A, web_ipv4.trim().to_owned()),
        set(
            format!("www.{apex}"),
            RecordType::A,
            web_ipv4.trim().to_owned(),
        ),
    ];
    if let Some(host) = mail_host {
        sets.push(set(
            apex.clone(),
            RecordType::MX,
            format!("10 {}", absolute(host)),
        ));
    }
    sets.push(set(
        apex,
        RecordType::TXT,
        "\"v=spf1 mx a ~all\"".to_owned(),
    ));
    sets
}

/// Lower-case with exactly one trailing dot.
fn absolute(name: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    format!("{name}.")
}
