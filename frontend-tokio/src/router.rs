//! diag's routes on the application's own router: [`Server`] as a `tower::Service` (feature
//! `tower`) and as an axum `Router` to merge (feature `axum`).

use core::convert::Infallible;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use bytes::Bytes;
use diag_core::server::{BoxError, DiagBody};

use crate::Server;

/// The future of [`Server`]'s `tower::Service::call`.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Result<hyper::Response<DiagBody>, Infallible>> + Send>>;

/// diag's routes as a tower service: every request gets what [`Server::respond`] answers
/// (`404` for a path diag does not serve). Always ready; never fails.
impl<B> tower_service::Service<hyper::Request<B>> for Server
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = hyper::Response<DiagBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<B>) -> ServiceFuture {
        let response = self.respond(request);
        Box::pin(async move { Ok(response.await) })
    }
}

/// The paths of the core routes, as axum writes them.
#[cfg(feature = "axum")]
const CORE_PATHS: [&str; 6] = ["/healthz", "/livez", "/readyz", "/readyz/", "/readyz/{*component}", "/metrics"];

#[cfg(feature = "axum")]
impl Server {
    /// diag's routes as an axum [`Router`](axum::Router) to [`merge`](axum::Router::merge) into
    /// the application's: `/healthz`, `/livez`, `/readyz`, `/readyz/<component>`, `/metrics`,
    /// and the paths the extra [`Routes`](crate::Routes) name in
    /// [`paths`](crate::Routes::paths), for every method (others than `GET` and `HEAD` get
    /// `405` with `Allow`, as on the built-in server). No other path is routed, so the
    /// application's own routes and fallback answer the rest; merging a router that routes one
    /// of these paths itself panics, as axum does for any overlap.
    ///
    /// The answers are those of [`Server::respond`]: negotiation, gzip, `HEAD`, the head-size
    /// limit and `/metrics` streamed in chunks. Connection limits and the drain are the
    /// application's server's (e.g. `axum::serve`); [`begin_shutdown`](Self::begin_shutdown)
    /// on a clone still turns `/readyz` to 503.
    ///
    /// # Examples
    /// See the [crate docs](crate).
    pub fn into_router<S: Clone + Send + Sync + 'static>(self) -> axum::Router<S> {
        let mut paths: Vec<String> = CORE_PATHS.iter().map(|p| (*p).to_owned()).collect();
        for path in self.handler().routes().map_or(&[][..], |r| r.paths()) {
            match path.strip_suffix('/') {
                Some(base) if !base.is_empty() => {
                    paths.extend([base.to_owned(), (*path).to_owned(), format!("{path}{{*rest}}")]);
                }
                _ => paths.push((*path).to_owned()),
            }
        }
        let mut router = axum::Router::new();
        let mut routed = std::collections::HashSet::new();
        for path in paths {
            if routed.insert(path.clone()) {
                router = router.route_service(&path, self.clone());
            }
        }
        router
    }
}
