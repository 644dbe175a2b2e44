//! The TLS client configuration every outbound client uses.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;

/// rustls with the ring provider and its safe default protocol versions,
/// trusting Mozilla's roots (webpki-roots) plus `extra_roots` (DER), with no
/// client certificate.
pub fn tls_config(extra_roots: &[Vec<u8>]) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots.add(CertificateDer::from(der.clone()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
