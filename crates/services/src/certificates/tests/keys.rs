//! The private key formats: each accepted one with a leaf for its public
//! key, each refused one with the reason the customer reads.

use rcgen::{KeyPair, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256, PublicKeyData};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::pkcs8::EncodePrivateKey as _;
use rustls::pki_types::PrivateKeyDer;
use x509_parser::asn1_rs::{Any, FromDer as _};

use super::*;

const RSA_2048_PKCS1: &str = include_str!("testdata/rsa2048-pkcs1.pem");
const RSA_8192_PKCS1: &str = include_str!("testdata/rsa8192-pkcs1.pem");
const RSA_1024_PKCS1: &str = include_str!("testdata/rsa1024-pkcs1.pem");
const P256_SEC1: &str = include_str!("testdata/p256-sec1.pem");
const P256_PKCS8: &str = include_str!("testdata/p256-pkcs8.pem");
const P256_SEC1_NO_PUBLIC: &str = include_str!("testdata/p256-sec1-nopub.pem");
const P256_PKCS8_ENCRYPTED: &str = include_str!("testdata/p256-pkcs8-encrypted.pem");
const P256_SEC1_ENCRYPTED: &str = include_str!("testdata/p256-sec1-encrypted.pem");
const P521_PKCS8: &str = include_str!("testdata/p521-pkcs8.pem");

/// An rcgen key pair for a PEM private key (PKCS#8 or SEC1 through our
/// reader; PKCS#1 RSA converted to PKCS#8 first).
fn key_pair(pem_text: &str) -> KeyPair {
    match pem::private_key(pem_text).unwrap() {
        PrivateKeyDer::Pkcs1(der) => {
            let rsa = rsa::RsaPrivateKey::from_pkcs1_der(der.secret_pkcs1_der()).unwrap();
            KeyPair::try_from(rsa.to_pkcs8_der().unwrap().as_bytes()).unwrap()
        }
        other => KeyPair::try_from(&other).unwrap(),
    }
}

/// Uploads a leaf for `key` (signed with `signing_key`) with `key_text`.
fn upload_with(signing_key: &KeyPair, key_text: &str) -> Result<Uploaded, CertificateError> {
    let pki = pki();
    let leaf = pki.leaf(&["a.test"], signing_key);
    pki.upload(&leaf, key_text, "a.test")
}

#[test]
fn an_rsa_pkcs1_key_is_accepted() {
    let uploaded = upload_with(&key_pair(RSA_2048_PKCS1), RSA_2048_PKCS1).unwrap();

    assert_eq!(uploaded.key_pem, RSA_2048_PKCS1);
}

/// An RSA public key for rcgen to put in a leaf (ring, under rcgen, loads
/// no RSA key over 4096 bits).
struct RsaPublic(Vec<u8>);

impl PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

#[test]
fn an_rsa_key_of_8192_bits_is_accepted() {
    let rsa = rsa::RsaPrivateKey::from_pkcs1_pem(RSA_8192_PKCS1).unwrap();
    let public = RsaPublic(rsa.to_public_key().to_pkcs1_der().unwrap().into_vec());
    let pki = pki();
    let leaf = pki.leaf(&["a.test"], &public);

    let uploaded = pki.upload(&leaf, RSA_8192_PKCS1, "a.test").unwrap();

    assert_eq!(uploaded.key_pem, RSA_8192_PKCS1);
}

#[test]
fn an_rsa_pkcs8_key_is_accepted() {
    let rsa = rsa::RsaPrivateKey::from_pkcs1_pem(RSA_2048_PKCS1).unwrap();
    let pkcs8 = pem::encode("PRIVATE KEY", rsa.to_pkcs8_der().unwrap().as_bytes());

    let uploaded = upload_with(&key_pair(RSA_2048_PKCS1), &pkcs8).unwrap();

    assert_eq!(uploaded.key_pem, pkcs8);
}

#[test]
fn a_sec1_key_is_accepted_without_its_parameters_block() {
    let uploaded = upload_with(&key_pair(P256_PKCS8), P256_SEC1).unwrap();

    assert!(
        uploaded
            .key_pem
            .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
    );
    assert!(!uploaded.key_pem.contains("EC PARAMETERS"));
    assert!(P256_SEC1.ends_with(&uploaded.key_pem));
}

/// The privateKey OCTET STRING of a PKCS#8 key: for ECDSA, a SEC1 key
/// (ring's carries no curve parameters).
fn pkcs8_inner(der: &[u8]) -> &[u8] {
    let (_, info) = Any::from_der(der).unwrap();
    let (rest, _version) = Any::from_der(info.data).unwrap();
    let (rest, _algorithm) = Any::from_der(rest).unwrap();
    Any::from_der(rest).unwrap().1.data
}

#[test]
fn a_sec1_key_without_curve_is_told_by_its_length() {
    let key = KeyPair::generate().unwrap();
    let PrivateKeyDer::Pkcs8(pkcs8) = pem::private_key(&key_pem(&key)).unwrap() else {
        panic!("rcgen writes PKCS#8");
    };
    let sec1 = pem::encode("EC PRIVATE KEY", pkcs8_inner(pkcs8.secret_pkcs8_der()));

    upload_with(&key, &sec1).unwrap();
}

#[test]
fn ed25519_and_p384_keys_are_accepted() {
    for alg in [&PKCS_ED25519, &PKCS_ECDSA_P384_SHA384] {
        let key = KeyPair::generate_for(alg).unwrap();

        upload_with(&key, &key_pem(&key)).unwrap();
    }
}

#[test]
fn a_key_for_another_rsa_certificate_is_a_mismatch() {
    let error = upload_with(&KeyPair::generate().unwrap(), RSA_2048_PKCS1).unwrap_err();

    assert_eq!(error, CertificateError::KeyMismatch);
}

#[test]
fn passphrase_protected_keys_are_refused() {
    let signing = key_pair(P256_PKCS8);
    for text in [P256_PKCS8_ENCRYPTED, P256_SEC1_ENCRYPTED] {
        let error = upload_with(&signing, text).unwrap_err();

        assert_eq!(error.code(), "key_unsupported");
        assert!(
            error.to_string().contains("remove the passphrase"),
            "{error}"
        );
    }
}

#[test]
fn a_sec1_key_without_its_public_key_is_refused_with_the_conversion() {
    let error = upload_with(&key_pair(P256_PKCS8), P256_SEC1_NO_PUBLIC).unwrap_err();

    assert_eq!(error.code(), "key_unsupported");
    assert!(
        error.to_string().contains("openssl pkcs8 -topk8 -nocrypt"),
        "{error}"
    );
}

#[test]
fn unsupported_curves_and_sizes_are_refused() {
    let signing = KeyPair::generate().unwrap();
    let p521 = upload_with(&signing, P521_PKCS8).unwrap_err();
    let rsa1024 = upload_with(&signing, RSA_1024_PKCS1).unwrap_err();

    assert_eq!(
        p521.to_string(),
        "this private key is not supported: the key uses the elliptic curve P-521; \
         mPanel accepts P-256 and P-384"
    );
    assert_eq!(
        rsa1024.to_string(),
        "this private key is not supported: the RSA key has 1024 bits; \
         mPanel accepts RSA keys of 2048 to 8192 bits"
    );
}

#[test]
fn text_that_is_not_one_private_key_is_unreadable() {
    let pki = pki();
    let signing = KeyPair::generate().unwrap();
    let one = key_pem(&signing);
    let two = one.clone() + &key_pem(&KeyPair::generate().unwrap());
    let garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
    let certificate = pem_of(&pki.intermediate) + &one;

    for text in ["", "secret", garbage, &two, &certificate] {
        let error = upload_with(&signing, text).unwrap_err();
        assert_eq!(error.code(), "key_unreadable", "{text}");
    }
}

#[test]
fn a_private_key_in_the_certificate_text_is_refused() {
    let pki = pki();
    let key = KeyPair::generate().unwrap();
    let leaf = pki.leaf(&["a.test"], &key);
    let chain = pki.chain(&leaf) + &key_pem(&key);

    let error = validate_upload(&chain, &key_pem(&key), "a.test", NOW, &pki.roots()).unwrap_err();

    assert_eq!(
        error.to_string(),
        "the certificate could not be read: the certificate text contains a private key; \
         paste the key in its own field"
    );
}
