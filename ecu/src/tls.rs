//! TLS for the API: the rustls server configuration (ring; optional client certificates from a
//! CA), an axum [`Listener`] that completes handshakes off the accept path, and the peer
//! information handlers see ([`Peer`]: address and the verified client certificate's common
//! name). Also a self-signed certificate maker for the demo and tests.
//!
//! The transport holds against slow and greedy clients ([`Limits`]): accepting never waits; a
//! client address may hold at most `per_addr` connections (handshaking or open) and the listener
//! `max_conns` in all — beyond that a new connection is closed at once; a handshake has
//! `handshake_within`; a connection must have had a response written within `header_within` of
//! its start (slow request headers), and is closed after `idle_within` without a byte either way.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Handshaken connections waiting for axum.
const QUEUE: usize = 64;

/// The transport's bounds (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections one client address may hold, handshaking or open.
    pub per_addr: usize,
    /// Connections in all.
    pub max_conns: usize,
    /// Time for the TLS handshake.
    pub handshake_within: Duration,
    /// Time from the connection's start to the first byte of a response (the first request's
    /// headers must have arrived by then).
    pub header_within: Duration,
    /// Time without a byte read or written before the connection is closed.
    pub idle_within: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_addr: 32,
            max_conns: 1024,
            handshake_within: Duration::from_secs(5),
            header_within: Duration::from_secs(10),
            idle_within: Duration::from_secs(60),
        }
    }
}

/// Connections held, per client address and in all.
#[derive(Debug, Default)]
struct Held {
    per_addr: HashMap<IpAddr, usize>,
    total: usize,
}

/// One admitted connection's place in [`Held`]; given back when dropped.
#[derive(Debug)]
struct Ticket {
    held: Arc<Mutex<Held>>,
    addr: IpAddr,
}

impl Ticket {
    fn admit(held: &Arc<Mutex<Held>>, addr: IpAddr, limits: &Limits) -> Option<Self> {
        let mut h = held.lock().ok()?;
        let n = h.per_addr.get(&addr).copied().unwrap_or(0);
        if n >= limits.per_addr || h.total >= limits.max_conns {
            return None;
        }
        h.per_addr.insert(addr, n + 1);
        h.total += 1;
        Some(Self {
            held: Arc::clone(held),
            addr,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut h) = self.held.lock() {
            h.total = h.total.saturating_sub(1);
            if let Some(n) = h.per_addr.get_mut(&self.addr) {
                *n -= 1;
                if *n == 0 {
                    h.per_addr.remove(&self.addr);
                }
            }
        }
    }
}

/// A connection handed to axum: its [`Ticket`] and the header and idle deadlines.
#[derive(Debug)]
pub struct Guarded {
    inner: TlsStream<TcpStream>,
    _ticket: Ticket,
    started: Instant,
    answered: bool,
    last: Instant,
    limits: Limits,
    timer: Pin<Box<Sleep>>,
}

impl Guarded {
    fn new(inner: TlsStream<TcpStream>, ticket: Ticket, started: Instant, limits: Limits) -> Self {
        Self {
            inner,
            _ticket: ticket,
            started,
            answered: false,
            last: Instant::now(),
            limits,
            timer: Box::pin(tokio::time::sleep_until(started + limits.header_within)),
        }
    }

    fn deadline(&self) -> Instant {
        if self.answered {
            self.last + self.limits.idle_within
        } else {
            (self.started + self.limits.header_within).min(self.last + self.limits.idle_within)
        }
    }

    /// `Pending` while the deadline is ahead (the timer then wakes the task), else the error.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        let deadline = self.deadline();
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                if self.answered {
                    "connection idle too long"
                } else {
                    "request headers too slow"
                },
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.expired(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl Guarded {
    /// Notes an answer when `r` wrote something.
    fn wrote(&mut self, r: &Poll<std::io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = r
            && *n > 0
        {
            self.answered = true;
            self.last = Instant::now();
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&r);
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the material.
    #[error("tls configuration refused")]
    Rustls(#[source] rustls::Error),
    /// The client CA could not be used.
    #[error("client certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration from PEM files.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let pem = |path: &Path, reason: String| TlsSetupError::Pem {
        path: path.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem(cert, "no certificate".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e.to_string()))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Rustls)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| pem(ca, e.to_string()))? {
                let c = c.map_err(|e| pem(ca, e.to_string()))?;
                roots.add(c).map_err(TlsSetupError::Rustls)?;
            }
            // A client certificate is optional (tokens still work), but one that is sent must
            // verify against the CA.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(TlsSetupError::Verifier)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key_der)
        .map_err(TlsSetupError::Rustls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a handler knows about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The client's address.
    pub remote: SocketAddr,
    /// The verified client certificate's common name.
    pub cert_cn: Option<String>,
}

/// A TLS listener for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    rx: mpsc::Receiver<(Guarded, Peer)>,
    _accept: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp` and handshakes with `config`, within the default [`Limits`].
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        Self::with_limits(tcp, config, Limits::default())
    }

    /// Accepts on `tcp` and handshakes with `config`, within `limits`.
    pub fn with_limits(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        limits: Limits,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let acceptor = TlsAcceptor::from(config);
        let held = Arc::new(Mutex::new(Held::default()));
        let accept = tokio::spawn(async move {
            loop {
                let (stream, remote) = match tcp.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let started = Instant::now();
                let Some(ticket) = Ticket::admit(&held, remote.ip(), &limits) else {
                    tracing::debug!(%remote, "connection limit reached: closed");
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(
                        limits.handshake_within,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, "tls handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "tls handshake timed out");
                            return;
                        }
                    };
                    let cert_cn = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| common_name(c.as_ref()));
                    let io = Guarded::new(tls, ticket, started, limits);
                    let _ = tx.send((io, Peer { remote, cert_cn })).await;
                });
            }
        });
        Ok(Self {
            local,
            rx,
            _accept: accept,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self._accept.abort();
    }
}

impl Listener for TlsListener {
    type Io = Guarded;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task only ends when the listener is dropped; wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer {
            remote: self.local,
            cert_cn: None,
        })
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// The subject common name of a DER certificate.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

/// A self-signed certificate and key (PEM) for `names` (DNS names or IP addresses).
pub fn self_signed(names: &[&str]) -> Result<(String, String), rcgen::Error> {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names)?;
    Ok((cert.pem(), signing_key.serialize_pem()))
}

#[cfg(test)]
mod tests;
