//! Looks in the world's DNS for a customer's proof of control of a domain:
//! its NS records (are they the provider's name servers?) and the TXT
//! records at `_mpanel-challenge.<domain>` (does one hold the order's
//! token?). Queries go to one configured resolver
//! (`dns_verification_resolver`), never to the provider's own PowerDNS,
//! whose zones mPanel writes and so can prove nothing.
//!
//! The rules of what counts are `mpanel_domain::orders::domain_control`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mpanel_domain::orders::domain_control::{
    VerificationMethod, challenge_name, delegated_to, txt_proves,
};

/// Where proofs are looked up, and how often a waiting job looks again.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// A DNS server that answers for the world: a recursive resolver in
    /// production; in tests, a PowerDNS standing in for the world's DNS.
    pub resolver: SocketAddr,
    /// How long a job waits before it looks again.
    pub recheck: time::Duration,
}

/// What one look found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Proven {
        method: VerificationMethod,
        /// What was seen, for the order view.
        seen: String,
    },
    NotYet {
        seen: String,
    },
}

/// The answer to one query: the records of the answer section and those
/// of the authority section (where an authoritative parent puts the NS
/// records of a delegation: a referral), or why there are none.
struct Answer {
    answers: Vec<Record>,
    authorities: Vec<Record>,
}

/// A name as compared: lower case, no trailing dot.
fn plain(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

async fn query(resolver: SocketAddr, name: &str, rtype: RecordType) -> Result<Answer, String> {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let name = Name::from_str(&fqdn).map_err(|e| format!("{fqdn} is not a DNS name: {e}"))?;
    let stream = UdpClientStream::builder(resolver, TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_secs(5)))
        .build();
    let (mut client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let task = tokio::spawn(background);
    let response = client.query(name, DNSClass::IN, rtype).await;
    task.abort();
    let response = response.map_err(|e| format!("the resolver did not answer: {e}"))?;
    match response.metadata.response_code {
        ResponseCode::NoError => Ok(Answer {
            answers: response.answers.clone(),
            authorities: response.authorities.clone(),
        }),
        ResponseCode::NXDomain => Ok(Answer {
            answers: Vec::new(),
            authorities: Vec::new(),
        }),
        other => Err(format!("the resolver answered {other}")),
    }
}

/// The NS names the world sees for `domain`: from an answer, or from a
/// referral to the domain's own servers.
async fn nameservers(resolver: SocketAddr, domain: &str) -> Result<Vec<String>, String> {
    let answer = query(resolver, domain, RecordType::NS).await?;
    let want = domain.trim_end_matches('.').to_ascii_lowercase();
    let of_domain = |records: &[Record]| -> Vec<String> {
        records
            .iter()
            .filter(|r| plain(&r.name) == want)
            .filter_map(|r| match &r.data {
                RData::NS(ns) => Some(plain(&ns.0)),
                _ => None,
            })
            .collect()
    };
    let found = of_domain(&answer.answers);
    Ok(if found.is_empty() {
        of_domain(&answer.authorities)
    } else {
        found
    })
}

/// The TXT values at `name`, each record's strings joined.
async fn txt_values(resolver: SocketAddr, name: &str) -> Result<Vec<String>, String> {
    let answer = query(resolver, name, RecordType::TXT).await?;
    let want = name.trim_end_matches('.').to_ascii_lowercase();
    Ok(answer
        .answers
        .iter()
        .filter(|r| plain(&r.name) == want)
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

/// Looks for the proof: the delegation first (it needs nothing of the
/// token), then the TXT record. A query that fails counts as "not yet":
/// the job looks again later.
pub async fn look(
    resolver: SocketAddr,
    domain: &str,
    token: &str,
    provider_nameservers: &[String],
) -> Finding {
    let ns = nameservers(resolver, domain).await;
    let ns_seen = match &ns {
        Ok(found) if delegated_to(found, provider_nameservers) => {
            return Finding::Proven {
                method: VerificationMethod::Delegation,
                seen: format!("delegated to {}", found.join(", ")),
            };
        }
        Ok(found) if found.is_empty() => "no NS records".to_owned(),
        Ok(found) => format!("NS {}", found.join(", ")),
        Err(why) => format!("NS not known ({why})"),
    };
    let name = challenge_name(domain);
    let txt_seen = match txt_values(resolver, &name).await {
        Ok(values) if txt_proves(&values, token) => {
            return Finding::Proven {
                method: VerificationMethod::Txt,
                seen: format!("{name} holds the token"),
            };
        }
        Ok(values) if values.is_empty() => format!("no TXT record at {name}"),
        Ok(_) => format!("the TXT records at {name} do not hold the token"),
        Err(why) => format!("TXT at {name} not known ({why})"),
    };
    Finding::NotYet {
        seen: format!("{ns_seen}; {txt_seen}"),
    }
}
