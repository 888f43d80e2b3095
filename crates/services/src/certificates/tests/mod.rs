//! Tests of the certificate checks: a test PKI made with rcgen (a root, an
//! intermediate, leaves with chosen names, validity and keys), and the
//! OpenSSL-made test-only keys of `testdata/` for the formats rcgen cannot
//! write.

mod keys;
mod reading;
mod upload;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const NOT_BEFORE: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
const NOT_AFTER: OffsetDateTime = datetime!(2026-04-01 0:00 UTC);

/// A root and an intermediate it signed.
struct Pki {
    root: rcgen::Certificate,
    intermediate: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(name: DistinguishedName) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    name
}

fn pki_named(intermediate_name: DistinguishedName) -> Pki {
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca_params(common_name("Test Root"));
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);
    let key = KeyPair::generate().unwrap();
    let params = ca_params(intermediate_name);
    let intermediate = params.signed_by(&key, &root_issuer).unwrap();
    Pki {
        root,
        intermediate,
        issuer: Issuer::new(params, key),
    }
}

fn pki() -> Pki {
    pki_named(common_name("Test Intermediate 1a2b3c"))
}

impl Pki {
    /// A leaf for `names` valid from `not_before` to `not_after`.
    fn leaf_valid(
        &self,
        names: &[&str],
        key: &impl PublicKeyData,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> rcgen::Certificate {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from(vec![0x0a, 0xbc, 0xde]));
        params.signed_by(key, &self.issuer).unwrap()
    }

    fn leaf(&self, names: &[&str], key: &impl PublicKeyData) -> rcgen::Certificate {
        self.leaf_valid(names, key, NOT_BEFORE, NOT_AFTER)
    }

    /// The PEM chain of `leaf` and the intermediate.
    fn chain(&self, leaf: &rcgen::Certificate) -> String {
        pem_of(leaf) + &pem_of(&self.intermediate)
    }

    fn roots(&self) -> Vec<CertificateDer<'static>> {
        vec![self.root.der().clone()]
    }

    /// Uploads `leaf` (with the intermediate) and `key` for `domain`.
    fn upload(
        &self,
        leaf: &rcgen::Certificate,
        key: &str,
        domain: &str,
    ) -> Result<Uploaded, CertificateError> {
        validate_upload(&self.chain(leaf), key, domain, NOW, &self.roots())
    }
}

fn pem_of(cert: &rcgen::Certificate) -> String {
    pem::encode("CERTIFICATE", cert.der())
}

fn key_pem(key: &KeyPair) -> String {
    pem::encode("PRIVATE KEY", &key.serialize_der())
}
