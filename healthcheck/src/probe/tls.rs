//! TLS client configurations of the probers: one that verifies the server's chain (system roots, or
//! roots a test injects) and its address, and one for `tls_verify: false` that accepts any
//! certificate but still checks the handshake signatures, so the probe proves the server holds the
//! key of the certificate it sent. Both use the ring provider explicitly (no process default).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The ring provider supports TLS 1.2 and 1.3 with the default suites, always.
const RING_HAS_DEFAULTS: &str = "the ring provider supports the default tls versions";

/// The two client configurations.
#[derive(Clone)]
pub struct TlsClients {
    verify: TlsConnector,
    no_verify: TlsConnector,
}

impl fmt::Debug for TlsClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsClients")
    }
}

impl TlsClients {
    /// Verifying against the system's trust store (`/etc/ssl/certs`); unreadable entries are
    /// logged and skipped.
    pub fn system() -> Self {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "cannot load a system tls root");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "tls roots loaded");
        Self::with_roots(roots)
    }

    /// Verifying against `roots` only.
    pub fn with_roots(roots: RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verify = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect(RING_HAS_DEFAULTS)
            .with_root_certificates(roots)
            .with_no_client_auth();
        let no_verify = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect(RING_HAS_DEFAULTS)
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                algs: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth();
        Self {
            verify: TlsConnector::from(Arc::new(verify)),
            no_verify: TlsConnector::from(Arc::new(no_verify)),
        }
    }

    /// Runs the handshake on `tcp`. The server name is the backend's address: rustls then sends no
    /// SNI (RFC 6066 forbids IP literals) and, when verifying, requires an IP SAN for it.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        server: IpAddr,
        verify: bool,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let c = if verify {
            &self.verify
        } else {
            &self.no_verify
        };
        c.connect(ServerName::IpAddress(server.into()), tcp).await
    }
}

/// Accepts every certificate (`tls_verify: false`), verifying only the handshake signatures.
#[derive(Debug)]
struct AnyCertificate {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
