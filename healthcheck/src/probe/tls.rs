//! TLS client configurations of the probers: one that verifies the server's chain (system roots, or
//! roots a test injects) and its address, and one for `tls_verify: false` that accepts any
//! certificate but still checks the handshake signatures, so the probe proves the server holds the
//! key of the certificate it sent. Both use the ring provider explicitly (no process default).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
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

    /// Runs the handshake on `io` (a TCP stream, or a tunnel inside TLS) for `server`: a DNS
    /// name is sent as SNI and, when verifying, must be in the certificate; an IP literal sends
    /// no SNI (RFC 6066 forbids it) and, when verifying, needs an IP SAN.
    pub async fn connect<IO>(
        &self,
        io: IO,
        server: &str,
        verify: bool,
    ) -> std::io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let c = if verify {
            &self.verify
        } else {
            &self.no_verify
        };
        let name = server.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(name.to_owned()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{server:?} is not a valid tls server name"),
            )
        })?;
        c.connect(name, io).await
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
