//! Fetching cluster.pb from Seesaw config servers: HTTPS to `<server>:<port>/config/<cluster>`,
//! trusting only the pinned CA file, servers tried in priority order (each name's addresses IPv6
//! first), no redirects, a deadline per attempt, and an exact `Content-Type:
//! application/x-protobuffer` on a 200 answer. The first server that answers correctly wins.
//!
//! Also here: saving a fetched config to disk atomically with an archive of earlier versions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The content type Seesaw's config servers send, required exactly.
pub const CONTENT_TYPE: &str = "application/x-protobuffer";
/// Largest config body accepted.
const MAX_BODY: usize = 64 << 20;

/// Where and how to fetch.
#[derive(Debug, Clone)]
pub struct ServerSource {
    /// Host names, in priority order.
    pub servers: Vec<String>,
    /// TCP port (Seesaw: 10255).
    pub port: u16,
    /// Cluster name, the last path segment.
    pub cluster: String,
    /// PEM file with the CA certificate(s) to trust.
    pub ca_file: PathBuf,
    /// Deadline per server attempt.
    pub timeout: Duration,
}

/// Why a fetch failed (every server's reason, in order).
#[derive(Debug, thiserror::Error)]
#[error("no config server answered: {}", .0.join("; "))]
pub struct FetchError(pub Vec<String>);

impl ServerSource {
    /// Fetches the cluster config body from the first server that answers correctly.
    pub async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
        let tls = match self.tls_config() {
            Ok(c) => Arc::new(c),
            Err(e) => return Err(FetchError(vec![e])),
        };
        let mut reasons = Vec::new();
        for host in &self.servers {
            let addrs = match tokio::net::lookup_host((host.as_str(), self.port)).await {
                Ok(a) => {
                    let mut v: Vec<SocketAddr> = a.collect();
                    // Seesaw tries IPv6 first.
                    v.sort_by_key(SocketAddr::is_ipv4);
                    v
                }
                Err(e) => {
                    reasons.push(format!("{host}: cannot resolve: {e}"));
                    continue;
                }
            };
            for addr in addrs {
                match tokio::time::timeout(self.timeout, self.get(tls.clone(), host, addr)).await {
                    Ok(Ok(body)) => return Ok(body),
                    Ok(Err(e)) => reasons.push(format!("{host} ({addr}): {e}")),
                    Err(_) => reasons.push(format!(
                        "{host} ({addr}): timed out after {:?}",
                        self.timeout
                    )),
                }
            }
        }
        Err(FetchError(reasons))
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.ca_file)
            .map_err(|e| format!("CA file {}: {e}", self.ca_file.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("CA file {}: {e}", self.ca_file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "CA file {} holds no certificate",
                self.ca_file.display()
            ));
        }
        let mut roots = rustls::RootCertStore::empty();
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("CA file {}: {e}", self.ca_file.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
    }

    async fn get(
        &self,
        tls: Arc<rustls::ClientConfig>,
        host: &str,
        addr: SocketAddr,
    ) -> Result<Vec<u8>, String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name =
            ServerName::try_from(host.to_owned()).map_err(|e| format!("bad server name: {e}"))?;
        let mut stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let request = format!(
            "GET /config/{} HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\nAccept: {CONTENT_TYPE}\r\n\r\n",
            self.cluster, self.port
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_BODY as u64 + 64 * 1024)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read: {e}"))?;
        parse_response(&raw)
    }
}

/// Checks an HTTP/1.x response (status 200, exact content type, no redirects) and returns its body.
pub fn parse_response(raw: &[u8]) -> Result<Vec<u8>, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete HTTP header")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "header is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        return Err(format!(
            "HTTP status {status:?} (redirects are not followed)"
        ));
    }
    let mut content_type = None;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(v.to_owned()),
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" if v.eq_ignore_ascii_case("chunked") => chunked = true,
            _ => {}
        }
    }
    if content_type.as_deref() != Some(CONTENT_TYPE) {
        return Err(format!(
            "content type {:?} is not {CONTENT_TYPE:?}",
            content_type.unwrap_or_default()
        ));
    }
    let body = &raw[end + 4..];
    if chunked {
        return dechunk(body);
    }
    match length {
        Some(n) if n > MAX_BODY => Err(format!("body of {n} bytes is too large")),
        Some(n) if body.len() < n => Err(format!("body truncated: {} of {n} bytes", body.len())),
        Some(n) => Ok(body[..n].to_vec()),
        None => Ok(body.to_vec()),
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size_str = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 || out.len() + size > MAX_BODY {
            return Err("chunk truncated or body too large".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Writes `text` as `<dir>/cluster.pb` atomically (temp file + rename; mode 0640, keeping the
/// file's group). The previous file, if any
/// and different, is first copied to `<dir>/archive/cluster.pb.<unix seconds>`; the archive is
/// then pruned to `keep` files and `max_age`.
pub fn save_with_archive(
    dir: &Path,
    text: &[u8],
    now: SystemTime,
    keep: usize,
    max_age: Duration,
) -> std::io::Result<()> {
    let path = dir.join("cluster.pb");
    if let Ok(old) = std::fs::read(&path) {
        if old == text {
            return Ok(());
        }
        let archive = dir.join("archive");
        std::fs::create_dir_all(&archive)?;
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        seesaw_common::files::write_atomic(&archive.join(format!("cluster.pb.{secs}")), &old)?;
        prune_archive(&archive, keep, max_age, now)?;
    }
    seesaw_common::files::write_atomic(&path, text)
}

/// Keeps the newest `keep` archived configs that are younger than `max_age`.
pub fn prune_archive(
    archive: &Path,
    keep: usize,
    max_age: Duration,
    now: SystemTime,
) -> std::io::Result<()> {
    let now_s = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(archive)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let ts = name.strip_prefix("cluster.pb.")?.parse::<u64>().ok()?;
            Some((ts, e.path()))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (i, (ts, p)) in files.iter().enumerate() {
        if i >= keep || now_s.saturating_sub(*ts) > max_age.as_secs() {
            std::fs::remove_file(p)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
