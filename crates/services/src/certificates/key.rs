//! The public key of an uploaded private key, in the form a certificate's
//! SubjectPublicKeyInfo carries it (the BIT STRING content): the DER
//! RSAPublicKey for RSA, the uncompressed point for ECDSA, the 32 bytes for
//! Ed25519. Loading the key through ring (ECDSA, Ed25519) or the `rsa` crate
//! (RSA: ring stops at 4096 bits, uploads may have up to 8192) checks that
//! its private and public halves agree.
//!
//! Accepted: PKCS#8 (`PRIVATE KEY`) with ECDSA P-256/P-384, RSA 2048–8192
//! bits or Ed25519; PKCS#1 (`RSA PRIVATE KEY`); SEC1 (`EC PRIVATE KEY`,
//! P-256/P-384) that includes its public key.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::traits::PublicKeyParts as _;
use rustls::pki_types::PrivateKeyDer;
use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};

use super::CertificateError;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";
const OID_DSA: &str = "1.2.840.10040.4.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_SECP256K1: &str = "1.3.132.0.10";

const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

const ACCEPTED: &str =
    "mPanel accepts RSA (2048 to 8192 bits), ECDSA (P-256, P-384) and Ed25519 keys";
const CONVERT: &str = "openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-pkcs8.pem";

/// The key's public key as the leaf's SubjectPublicKeyInfo holds it.
pub(super) fn public_key(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, CertificateError> {
    match key {
        PrivateKeyDer::Pkcs1(der) => rsa_pkcs1(der.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(der) => ec_sec1(der.secret_sec1_der(), None),
        PrivateKeyDer::Pkcs8(der) => pkcs8(der.secret_pkcs8_der()),
        _ => Err(unsupported(ACCEPTED)),
    }
}

/// PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING, ... }
fn pkcs8(der: &[u8]) -> Result<Vec<u8>, CertificateError> {
    let items = sequence(der, "PKCS#8 key")?;
    let (algorithm, private_key) = match items.as_slice() {
        [_, algorithm, private_key, ..] => (algorithm, private_key),
        _ => return Err(malformed("PKCS#8 key")),
    };
    let algorithm = sequence_of(algorithm, "PKCS#8 key")?;
    let (oid, parameters) = match algorithm.as_slice() {
        [oid, rest @ ..] => (oid_text(oid, "PKCS#8 key")?, rest.first()),
        _ => return Err(malformed("PKCS#8 key")),
    };
    match oid.as_str() {
        OID_RSA => rsa_pkcs1(octet_string(private_key, "PKCS#8 key")?),
        OID_EC => {
            let curve = parameters.map(|p| oid_text(p, "PKCS#8 key")).transpose()?;
            ec_sec1(octet_string(private_key, "PKCS#8 key")?, curve)
        }
        OID_ED25519 => ed25519(der),
        other => Err(unsupported(&format!(
            "it is a {} key; {ACCEPTED}",
            algorithm_name(other)
        ))),
    }
}

fn algorithm_name(oid: &str) -> String {
    match oid {
        OID_RSA_PSS => "RSA-PSS".to_owned(),
        OID_ED448 => "Ed448".to_owned(),
        OID_DSA => "DSA".to_owned(),
        other => format!("{other} (object identifier)"),
    }
}

/// RSAPrivateKey (PKCS#1), bare or inside PKCS#8. The size is checked on
/// the modulus first, so an oversized key is not worked on.
fn rsa_pkcs1(der: &[u8]) -> Result<Vec<u8>, CertificateError> {
    let structure = rsa::pkcs1::RsaPrivateKey::try_from(der).map_err(|_| malformed("RSA key"))?;
    let modulus_bytes = structure.modulus.as_bytes().len();
    if modulus_bytes > RSA_BITS.end() / 8 {
        return Err(rsa_size(modulus_bytes * 8));
    }
    let key = rsa::RsaPrivateKey::from_pkcs1_der(der).map_err(|_| malformed("RSA key"))?;
    let bits = key.n().bits();
    if !RSA_BITS.contains(&bits) {
        return Err(rsa_size(bits));
    }
    let public = key
        .to_public_key()
        .to_pkcs1_der()
        .map_err(|_| malformed("RSA key"))?;
    Ok(public.as_bytes().to_vec())
}

fn rsa_size(bits: usize) -> CertificateError {
    unsupported(&format!(
        "the RSA key has {bits} bits; mPanel accepts RSA keys of 2048 to 8192 bits"
    ))
}

fn ed25519(der: &[u8]) -> Result<Vec<u8>, CertificateError> {
    let key =
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| malformed("Ed25519 key"))?;
    Ok(key.public_key().as_ref().to_vec())
}

/// ECPrivateKey ::= SEQUENCE { version, OCTET STRING privateKey,
/// [0] ECParameters OPTIONAL, [1] BIT STRING publicKey OPTIONAL }.
/// `curve` is the PKCS#8 wrapper's, when there is one.
fn ec_sec1(der: &[u8], curve: Option<String>) -> Result<Vec<u8>, CertificateError> {
    let items = sequence(der, "EC key")?;
    let scalar = match items.get(1) {
        Some(scalar) => octet_string(scalar, "EC key")?,
        None => return Err(malformed("EC key")),
    };
    let own_curve = tagged(&items, 0)
        .map(|inner| oid_text(&inner, "EC key"))
        .transpose()?;
    let algorithm = ec_algorithm(curve.or(own_curve), scalar.len())?;
    let Some(point) = tagged(&items, 1) else {
        return Err(unsupported(&format!(
            "the key does not include its public key; convert it with `{CONVERT}` and upload the result"
        )));
    };
    let point = bit_string(&point)?;
    let key = EcdsaKeyPair::from_private_key_and_public_key(
        algorithm,
        scalar,
        point,
        &SystemRandom::new(),
    )
    .map_err(|_| malformed("EC key"))?;
    Ok(key.public_key().as_ref().to_vec())
}

/// The signing algorithm of a curve, named or (when the key leaves it out)
/// told by the length of the private scalar.
fn ec_algorithm(
    curve: Option<String>,
    scalar_len: usize,
) -> Result<&'static EcdsaSigningAlgorithm, CertificateError> {
    let curve = curve.unwrap_or_else(|| match scalar_len {
        32 => OID_P256.to_owned(),
        48 => OID_P384.to_owned(),
        _ => String::new(),
    });
    match curve.as_str() {
        OID_P256 => Ok(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        OID_P384 => Ok(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        other => Err(unsupported(&format!(
            "the key uses the elliptic curve {}; mPanel accepts P-256 and P-384",
            curve_name(other)
        ))),
    }
}

fn curve_name(oid: &str) -> String {
    match oid {
        OID_P521 => "P-521".to_owned(),
        OID_SECP256K1 => "secp256k1".to_owned(),
        "" => "of an unknown kind".to_owned(),
        other => format!("{other} (object identifier)"),
    }
}

/// The items of the DER SEQUENCE `der`, which must be all of `der`.
fn sequence<'a>(der: &'a [u8], what: &str) -> Result<Vec<Any<'a>>, CertificateError> {
    match Any::from_der(der) {
        Ok(([], any)) => sequence_of(&any, what),
        _ => Err(malformed(what)),
    }
}

fn sequence_of<'a>(any: &Any<'a>, what: &str) -> Result<Vec<Any<'a>>, CertificateError> {
    if any.class() != Class::Universal || any.tag() != Tag::Sequence {
        return Err(malformed(what));
    }
    let mut items = Vec::new();
    let mut rest = any.data;
    while !rest.is_empty() {
        let (after, item) = Any::from_der(rest).map_err(|_| malformed(what))?;
        items.push(item);
        rest = after;
    }
    Ok(items)
}

/// The object inside the explicit context tag `[number]`, if present.
fn tagged<'a>(items: &[Any<'a>], number: u32) -> Option<Any<'a>> {
    items
        .iter()
        .find(|item| item.class() == Class::ContextSpecific && item.tag() == Tag(number))
        .and_then(|item| Any::from_der(item.data).ok())
        .map(|(_, inner)| inner)
}

fn oid_text(any: &Any<'_>, what: &str) -> Result<String, CertificateError> {
    any.clone()
        .oid()
        .map(|oid| oid.to_id_string())
        .map_err(|_| malformed(what))
}

fn octet_string<'a>(any: &Any<'a>, what: &str) -> Result<&'a [u8], CertificateError> {
    match any.class() == Class::Universal && any.tag() == Tag::OctetString {
        true => Ok(any.data),
        false => Err(malformed(what)),
    }
}

/// The bytes of a BIT STRING without unused bits (a public point).
fn bit_string<'a>(any: &Any<'a>) -> Result<&'a [u8], CertificateError> {
    match (any.tag(), any.data.split_first()) {
        (Tag::BitString, Some((0, point))) => Ok(point),
        _ => Err(malformed("EC key")),
    }
}

fn malformed(what: &str) -> CertificateError {
    CertificateError::KeyUnreadable(format!("the {what} is malformed"))
}

fn unsupported(reason: &str) -> CertificateError {
    CertificateError::KeyUnsupported(reason.to_owned())
}
