//! [`Routes`]: the hook through which an application serves extra routes (profiles, a log
//! level) before the core routes.

use std::future::Future;
use std::pin::Pin;

use hyper::body::Incoming;

use crate::DiagBody;

/// The future of an extra route's response.
pub type RouteFuture = Pin<Box<dyn Future<Output = hyper::Response<DiagBody>> + Send>>;

/// Extra routes, consulted for every request before the core routes.
///
/// Return `Ok(future)` to answer the request, or `Err(request)` to hand it back to the core
/// routes. The server adds `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`
/// when the response lacks them. Closures of the right shape implement it.
///
/// # Examples
/// ```
/// use diag_tokio::{DiagBody, RouteFuture, Routes};
/// use hyper::body::Incoming;
/// fn hello(req: hyper::Request<Incoming>) -> Result<RouteFuture, hyper::Request<Incoming>> {
///     if req.uri().path() != "/hello" {
///         return Err(req);
///     }
///     Ok(Box::pin(async { hyper::Response::new(DiagBody::full("hello\n")) }))
/// }
/// fn assert_routes(_: impl Routes) {}
/// assert_routes(hello);
/// ```
pub trait Routes: Send + Sync + 'static {
    /// Answers `request`, or hands it back.
    ///
    /// # Errors
    /// The request itself when this hook does not serve it.
    #[allow(
        clippy::result_large_err,
        reason = "the request is handed back by value, once; boxing would cost every request"
    )]
    fn route(&self, request: hyper::Request<Incoming>) -> Result<RouteFuture, hyper::Request<Incoming>>;
}

impl<F> Routes for F
where
    F: Fn(hyper::Request<Incoming>) -> Result<RouteFuture, hyper::Request<Incoming>> + Send + Sync + 'static,
{
    #[allow(clippy::result_large_err, reason = "as the trait method")]
    fn route(&self, request: hyper::Request<Incoming>) -> Result<RouteFuture, hyper::Request<Incoming>> {
        self(request)
    }
}
