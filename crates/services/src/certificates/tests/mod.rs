//! Tests of the certificate checks: a test PKI made with rcgen (a root, an
//! intermediate, leaves with chosen names, validity and keys). Every key is
//! made in-process when the tests run (no key is committed, not even a
//! test one); the formats rcgen cannot write (RSA, SEC1, the refused ones)
//! are made in `keys` with the `rsa` crate and the DER helpers below.

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

/// Just enough DER to write the private key formats rcgen does not.
mod der {
    /// id-ecPublicKey (1.2.840.10045.2.1).
    pub(super) const OID_EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// prime256v1 / P-256 (1.2.840.10045.3.1.7).
    pub(super) const OID_P256: &[u8] =
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// secp521r1 / P-521 (1.3.132.0.35).
    pub(super) const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
    /// PBES2 (1.2.840.113549.1.5.13), the scheme of `openssl pkcs8 -v2`.
    pub(super) const OID_PBES2: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d,
    ];

    /// One element: tag, length (short or long form), content.
    pub(super) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match u8::try_from(content.len()) {
            Ok(len) if len < 0x80 => out.push(len),
            _ => {
                let len = content.len().to_be_bytes();
                let start = len.iter().position(|byte| *byte != 0).unwrap_or(0);
                let len = &len[start..];
                out.push(0x80 | u8::try_from(len.len()).unwrap());
                out.extend_from_slice(len);
            }
        }
        out.extend_from_slice(content);
        out
    }

    pub(super) fn sequence(items: &[&[u8]]) -> Vec<u8> {
        tlv(0x30, &items.concat())
    }

    /// A small non-negative INTEGER (a version).
    pub(super) fn integer(value: u8) -> Vec<u8> {
        assert!(value < 0x80, "a one-byte positive INTEGER");
        tlv(0x02, &[value])
    }

    pub(super) fn octet_string(bytes: &[u8]) -> Vec<u8> {
        tlv(0x04, bytes)
    }

    /// A BIT STRING of whole bytes (no unused bits).
    pub(super) fn bit_string(bytes: &[u8]) -> Vec<u8> {
        tlv(0x03, &[&[0][..], bytes].concat())
    }

    /// The explicit context tag `[number]` around `inner`.
    pub(super) fn context(number: u8, inner: &[u8]) -> Vec<u8> {
        tlv(0xa0 | number, inner)
    }
}
