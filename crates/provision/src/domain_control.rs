//! Looks in the world's DNS for a customer's proof of control of a domain:
//! its NS records (are they the provider's name servers?) and the TXT
//! records at `_mpanel-challenge.<domain>` (does one hold the order's
//! token?). Queries go to one configured resolver
//! (`dns_verification_resolver`), never to the provider's own PowerDNS,
//! whose zones mPanel writes and so can prove nothing.
//!
//! The delegation is read where it is made: at the parent zone's servers
//! (found through the resolver, then asked directly, without recursion).
//! A domain delegated to us has no zone on our servers until it is proven,
//! so a recursive resolver asked for its NS records follows the delegation
//! to a server that refuses, and answers SERVFAIL: asking only the resolver
//! would never see the delegation it is waiting for. The resolver's own
//! NS answer is the fallback when the parent cannot be asked.
//!
//! The rules of what counts are `mpanel_domain::orders::domain_control`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle;
use hickory_proto::op::{DnsRequestOptions, Query, ResponseCode};
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
    /// The port a parent zone's servers are asked on (53 outside tests).
    pub authority_port: u16,
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

/// Asks `server` one question; `recurse`: as a stub asks a resolver;
/// otherwise as a resolver asks an authoritative server.
async fn ask(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    recurse: bool,
) -> Result<Answer, String> {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let name = Name::from_str(&fqdn).map_err(|e| format!("{fqdn} is not a DNS name: {e}"))?;
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_secs(5)))
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let task = tokio::spawn(background);
    let mut query = Query::query(name, rtype);
    query.set_query_class(DNSClass::IN);
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = recurse;
    options.use_edns = true;
    let response = client.lookup(query, options).next().await;
    task.abort();
    let response = match response {
        Some(Ok(response)) => response,
        Some(Err(e)) => return Err(format!("{server} did not answer: {e}")),
        None => return Err(format!("{server} did not answer")),
    };
    match response.metadata.response_code {
        ResponseCode::NoError => Ok(Answer {
            answers: response.answers.clone(),
            authorities: response.authorities.clone(),
        }),
        ResponseCode::NXDomain => Ok(Answer {
            answers: Vec::new(),
            authorities: Vec::new(),
        }),
        other => Err(format!("{server} answered {other}")),
    }
}

async fn query(resolver: SocketAddr, name: &str, rtype: RecordType) -> Result<Answer, String> {
    ask(resolver, name, rtype, true).await
}

/// The NS names of `domain` among `records`.
fn ns_of(records: &[Record], domain: &str) -> Vec<String> {
    let want = domain.trim_end_matches('.').to_ascii_lowercase();
    records
        .iter()
        .filter(|r| plain(&r.name) == want)
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(plain(&ns.0)),
            _ => None,
        })
        .collect()
}

/// The delegation of `domain` as its parent zone's servers give it: the
/// zone above it (the owner of the SOA the resolver gives for its parent
/// name), that zone's name servers and their addresses (through the
/// resolver), then each server asked directly for the NS records of
/// `domain`, until one answers with them.
async fn parent_delegation(
    settings: &ControlSettings,
    domain: &str,
) -> Result<Vec<String>, String> {
    let parent = domain
        .trim_end_matches('.')
        .split_once('.')
        .map(|(_, parent)| parent.to_owned())
        .ok_or_else(|| format!("{domain} has no parent"))?;
    let soa = query(settings.resolver, &parent, RecordType::SOA).await?;
    let zone = soa
        .answers
        .iter()
        .chain(&soa.authorities)
        .find(|r| r.record_type() == RecordType::SOA)
        .map(|r| plain(&r.name))
        .ok_or_else(|| format!("no zone found above {domain}"))?;
    let servers = ns_of(
        &query(settings.resolver, &zone, RecordType::NS)
            .await?
            .answers,
        &zone,
    );
    let mut last = format!("the zone {zone} has no name servers");
    for server in servers {
        let addresses: Vec<std::net::IpAddr> =
            match query(settings.resolver, &server, RecordType::A).await {
                Ok(a) => a
                    .answers
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
                        _ => None,
                    })
                    .collect(),
                Err(why) => {
                    last = why;
                    continue;
                }
            };
        for ip in addresses {
            let at = SocketAddr::new(ip, settings.authority_port);
            match ask(at, domain, RecordType::NS, false).await {
                Ok(answer) => {
                    let found = ns_of(&answer.authorities, domain);
                    let found = if found.is_empty() {
                        ns_of(&answer.answers, domain)
                    } else {
                        found
                    };
                    if !found.is_empty() {
                        return Ok(found);
                    }
                    last = format!("{server} gives no NS records for {domain}");
                }
                Err(why) => last = why,
            }
        }
    }
    Err(last)
}

/// The NS names the world sees for `domain`, and who said so: the
/// parent's delegation, else the resolver's answer (or its referral to the
/// domain's servers).
async fn nameservers(
    settings: &ControlSettings,
    domain: &str,
) -> Result<(Vec<String>, &'static str), String> {
    let parent = match parent_delegation(settings, domain).await {
        Ok(found) => return Ok((found, "the parent zone")),
        Err(why) => why,
    };
    let answer = query(settings.resolver, domain, RecordType::NS)
        .await
        .map_err(|resolver| format!("{resolver}; parent: {parent}"))?;
    let found = ns_of(&answer.answers, domain);
    let found = if found.is_empty() {
        ns_of(&answer.authorities, domain)
    } else {
        found
    };
    Ok((found, "the resolver"))
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
    settings: &ControlSettings,
    domain: &str,
    token: &str,
    provider_nameservers: &[String],
) -> Finding {
    let ns = nameservers(settings, domain).await;
    let ns_seen = match &ns {
        Ok((found, by)) if delegated_to(found, provider_nameservers) => {
            return Finding::Proven {
                method: VerificationMethod::Delegation,
                seen: format!("delegated to {} (by {by})", found.join(", ")),
            };
        }
        Ok((found, _)) if found.is_empty() => "no NS records".to_owned(),
        Ok((found, by)) => format!("NS {} (by {by})", found.join(", ")),
        Err(why) => format!("NS not known ({why})"),
    };
    let name = challenge_name(domain);
    let txt_seen = match txt_values(settings.resolver, &name).await {
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
