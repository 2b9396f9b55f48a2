//! Accepting connections: TLS (with a handshake time limit), HTTP/1.1 or HTTP/2 by ALPN, and graceful shutdown
//! that stops accepting, lets in-flight requests finish within a deadline, then returns.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::Service;
use crate::coalesce::Coalesce;
use crate::metrics::Metrics;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTPS listener and the router behind it.
#[derive(Debug)]
pub struct Listener {
    pub service: Service,
    pub tcp: TcpListener,
    pub tls: Arc<ServerConfig>,
    pub router: Router,
}

/// The optional plain-HTTP listener: it answers every request with a 308 to the same path over HTTPS.
#[derive(Debug)]
pub struct RedirectListener {
    pub tcp: TcpListener,
    pub https_port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("a listener task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Serves every listener until `shutdown` is cancelled, then drains: no new connections are accepted, open
/// connections finish their in-flight requests (HTTP/2 gets GOAWAY, HTTP/1.1 keep-alive is turned off), and
/// after `drain_timeout` whatever is left is dropped.
pub async fn serve(
    listeners: Vec<Listener>,
    redirect: Option<RedirectListener>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    drain_timeout: Duration,
) -> Result<(), ServeError> {
    let graceful = Arc::new(GracefulShutdown::new());
    let mut tasks = Vec::new();
    for listener in listeners {
        tasks.push(tokio::spawn(accept_tls(listener, metrics.clone(), graceful.clone(), shutdown.clone())));
    }
    if let Some(redirect) = redirect {
        tasks.push(tokio::spawn(accept_redirect(redirect, graceful.clone(), shutdown.clone())));
    }
    for task in tasks {
        task.await?;
    }
    // Every accept loop has ended and dropped its handle; connection tasks hold only watchers.
    let Some(graceful) = Arc::into_inner(graceful) else {
        return Ok(());
    };
    tracing::info!(
        drain_timeout_ms = drain_timeout.as_millis() as u64,
        "stopped accepting; draining connections"
    );
    if tokio::time::timeout(drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!("drain deadline passed; closing the remaining connections");
    }
    Ok(())
}

fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

async fn accept_tls(
    listener: Listener,
    metrics: Arc<Metrics>,
    graceful: Arc<GracefulShutdown>,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(listener.tls.clone());
    let builder = Arc::new(http_builder());
    let label = listener.service.label();
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.tcp.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = listener.router.clone();
        let builder = builder.clone();
        let metrics = metrics.clone();
        let watcher = graceful.watcher();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let tls = tokio::select! {
                () = shutdown.cancelled() => return,
                result = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => match result {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        metrics.tls_handshake_failed(label);
                        tracing::debug!(peer = %peer, error = %error, "tls handshake failed");
                        return;
                    }
                    Err(_) => {
                        metrics.tls_handshake_failed(label);
                        tracing::debug!(peer = %peer, "tls handshake timed out");
                        return;
                    }
                },
            };
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request.map(Body::new))
            });
            metrics.connection_opened(label);
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let io = TokioIo::new(Coalesce::new(tls, h2));
            let connection = builder.serve_connection_with_upgrades(io, service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(peer = %peer, error = %error, "connection ended with an error");
            }
            metrics.connection_closed(label);
        });
    }
}

async fn accept_redirect(
    redirect: RedirectListener,
    graceful: Arc<GracefulShutdown>,
    shutdown: CancellationToken,
) {
    let builder = Arc::new(http_builder());
    loop {
        let tcp = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = redirect.tcp.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let https_port = redirect.https_port;
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| async move {
                Ok::<_, std::convert::Infallible>(redirect_response(&request, https_port))
            });
            let connection = builder.serve_connection(TokioIo::new(tcp), service);
            let _ = watcher.watch(connection.into_owned()).await;
        });
    }
}

/// 308 to the HTTPS origin with the same path and query. The host comes from the request only when it is a
/// plain host name or address, so the redirect cannot be pointed elsewhere by a crafted header.
fn redirect_response<B>(request: &Request<B>, https_port: u16) -> Response<Body> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(strip_port)
        .filter(|h| is_plain_host(h))
        .unwrap_or("localhost");
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if host.contains(':') {
        format!("https://[{host}]:{https_port}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    };
    let mut response = Response::new(Body::from(
        r#"{"error":{"code":"https_required","message":"this service is served over https only"}}"#,
    ));
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let (Ok(_), Ok(value)) = (location.parse::<Uri>(), HeaderValue::from_str(&location)) {
        headers.insert(header::LOCATION, value);
    }
    response
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(host: Option<&str>, uri: &str, expected: &str) {
        let mut request = Request::builder().uri(uri);
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        let response = redirect_response(&request.body(()).expect("request"), 8443);
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[header::LOCATION], expected, "{host:?} {uri}");
    }

    #[test]
    fn redirects_keep_host_path_and_query_and_refuse_odd_hosts() {
        check(Some("example.com"), "/health?x=1", "https://example.com:8443/health?x=1");
        check(Some("example.com:80"), "/", "https://example.com:8443/");
        check(Some("[::1]:80"), "/a", "https://[::1]:8443/a");
        check(Some("127.0.0.1:8080"), "/a", "https://127.0.0.1:8443/a");
        check(Some("evil.com/@x"), "/a", "https://localhost:8443/a");
        check(None, "/a", "https://localhost:8443/a");
    }
}
