//! A certificate authority made at run time (with `rcgen`), so the offline
//! site can speak HTTPS with a certificate the crawler is told to trust —
//! by `--ca-file` on the command line, or [`LocalCa::trust`] in code —
//! and nothing is trusted that was not made in this run.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// A throw-away certificate authority: its key lives only in this process.
pub struct LocalCa {
    cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

/// A server's certificate chain and private key.
#[derive(Debug)]
pub struct Identity {
    /// The server's certificate, then the authority's.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's private key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
}

/// How long a certificate [`LocalCa::issue`] makes is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 1975 to 4096 (rcgen's defaults): always valid in a test.
    Always,
    /// Only during the year 2000: long expired.
    Expired,
}

impl LocalCa {
    /// Make a new authority named `name` (its common name).
    pub fn new(name: &str) -> Result<LocalCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(LocalCa {
            cert,
            issuer: Issuer::new(params, key),
        })
    }

    /// The authority's certificate in PEM, as `--ca-file` reads it.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The authority's certificate.
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A root store that trusts this authority and nothing else.
    pub fn trust(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        // Our own certificate, just made: it parses.
        let _ = roots.add(self.der());
        roots
    }

    /// Issue a server certificate for `names` (host names or IP addresses).
    pub fn issue(&self, names: &[&str], validity: Validity) -> Result<Identity, rcgen::Error> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 12, 31);
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Identity {
            chain: vec![cert.der().clone(), self.der()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        })
    }
}

impl Identity {
    /// A rustls server configuration presenting this identity (ring's
    /// cryptography, TLS 1.2 and 1.3).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        Ok(Arc::new(config))
    }
}
