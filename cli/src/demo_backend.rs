//! The demo's HTTP backends (`seesaw demo-backend --listen ADDR --name NAME`, hidden): a small
//! hyper HTTP/1.1 server with keep-alive that answers every request `200` with body `NAME\n` and
//! header `X-Backend: NAME`, so a client can see which backend the load balancer picked. Also the
//! matching one-request HTTP client the demo uses to probe the VIP.
#![allow(
    clippy::print_stderr,
    reason = "the backend reports a failed start on stderr; it has no logger"
)]

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use seesaw_common::exit;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How often the backend checks that the demo that started it is still alive.
const PARENT_POLL: Duration = Duration::from_millis(500);

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Connecting or exchanging the request failed.
    #[error("cannot connect to {0}")]
    Connect(SocketAddr, #[source] io::Error),
    /// The HTTP exchange failed.
    #[error("http request to {0} failed")]
    Http(SocketAddr, #[source] hyper::Error),
    /// No answer within the timeout.
    #[error("no answer from {0} in time")]
    Timeout(SocketAddr),
}

/// What a probe got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The `X-Backend` header, if any.
    pub backend: Option<String>,
    /// The body, lossily decoded.
    pub body: String,
}

/// Entry point of the hidden subcommand. Serves until SIGTERM/SIGINT or until the parent (the
/// demo) goes away, so a crashed demo does not leave backends behind. Returns the exit code.
/// `delay`: how long each answer takes (the WLC bench's backends of unequal service times).
pub fn run(listen: SocketAddr, name: &str, delay: Duration) -> u8 {
    let Ok(header) = HeaderValue::from_str(name) else {
        eprintln!("backend name {name:?} is not a valid header value");
        return exit::USAGE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return exit::OSERR;
        }
    };
    runtime.block_on(async {
        let listener = match TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {listen}: {e}");
                return exit::OSERR;
            }
        };
        let shutdown = CancellationToken::new();
        if let Err(e) = seesaw_common::signal::install(shutdown.clone()) {
            eprintln!("cannot install signal handlers: {e}");
            return exit::OSERR;
        }
        tokio::spawn(exit_with_parent(shutdown.clone()));
        serve(listener, name.to_owned(), header, delay, shutdown).await;
        exit::OK
    })
}

/// Serves `listener` until `shutdown`, answering every request with the backend's name after
/// `delay`.
pub async fn serve(
    listener: TcpListener,
    name: String,
    header: HeaderValue,
    delay: Duration,
    shutdown: CancellationToken,
) {
    let body = Bytes::from(format!("{name}\n"));
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or a connection reset before accept: back off briefly
                // instead of spinning, and keep serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let body = body.clone();
        let header = header.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<Incoming>| {
                let response = Response::builder()
                    .header("X-Backend", header.clone())
                    .header("Content-Type", "text/plain")
                    .body(Full::new(body.clone()))
                    .expect("a response of valid static parts and a checked header value");
                async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Ok::<_, Infallible>(response)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                // Errors are client disconnects mid-request; nothing to do.
                _ = conn.as_mut() => {}
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// One `GET /` to `addr` on a fresh connection, within `timeout`.
pub async fn get(addr: SocketAddr, timeout: Duration) -> Result<Answer, ProbeError> {
    tokio::time::timeout(timeout, get_inner(addr))
        .await
        .map_err(|_| ProbeError::Timeout(addr))?
}

async fn get_inner(addr: SocketAddr) -> Result<Answer, ProbeError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| ProbeError::Connect(addr, e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ProbeError::Http(addr, e))?;
    let driver = tokio::spawn(conn);
    let request = Request::get("/")
        .header("Host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .expect("a request of valid static parts");
    let result = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let backend = response
            .headers()
            .get("X-Backend")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            backend,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
    .await
    .map_err(|e| ProbeError::Http(addr, e));
    driver.abort();
    result
}

/// Cancels `shutdown` when this process is re-parented, i.e. the demo that started it died
/// without stopping it (a safe stand-in for `PR_SET_PDEATHSIG`, which needs `pre_exec`).
async fn exit_with_parent(shutdown: CancellationToken) {
    let parent = nix::unistd::getppid();
    loop {
        tokio::time::sleep(PARENT_POLL).await;
        if nix::unistd::getppid() != parent {
            shutdown.cancel();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(name: &str) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let token = CancellationToken::new();
        let header = HeaderValue::from_str(name).expect("valid name");
        let task = tokio::spawn(serve(
            listener,
            name.to_owned(),
            header,
            Duration::ZERO,
            token.clone(),
        ));
        (addr, token, task)
    }

    #[tokio::test]
    async fn answers_with_its_name() {
        let (addr, token, task) = start("be1").await;
        let answer = get(addr, Duration::from_secs(5)).await.expect("answer");
        assert_eq!(
            answer,
            Answer {
                status: 200,
                backend: Some("be1".into()),
                body: "be1\n".into()
            }
        );
        token.cancel();
        task.await.expect("server task");
        // Stopped means stopped: nobody accepts any more.
        assert!(get(addr, Duration::from_secs(5)).await.is_err());
    }

    #[tokio::test]
    async fn keeps_the_connection_alive() {
        let (addr, token, _task) = start("be2").await;
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        for path in ["/", "/healthz", "/anything"] {
            sender.ready().await.expect("connection still usable");
            let response = sender
                .send_request(
                    Request::get(path)
                        .body(Empty::<Bytes>::new())
                        .expect("request"),
                )
                .await
                .expect("response");
            assert_eq!(response.status(), 200);
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            assert_eq!(&body[..], b"be2\n");
        }
        token.cancel();
    }

    #[tokio::test]
    async fn probe_reports_refused_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        assert!(matches!(
            get(addr, Duration::from_secs(5)).await,
            Err(ProbeError::Connect(..))
        ));
    }
}
