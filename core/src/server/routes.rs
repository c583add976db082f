//! [`Routes`]: the hook through which an application serves extra routes (profiles, a log
//! level) before the core routes.

use core::future::Future;
use core::pin::Pin;
use std::boxed::Box;

use hyper::body::Incoming;

use crate::server::DiagBody;

/// The future of an extra route's response.
pub type RouteFuture = Pin<Box<dyn Future<Output = hyper::Response<DiagBody>> + Send>>;

/// Extra routes, consulted for every request before the core routes.
///
/// The server asks [`claims`](Self::claims) first; a claimed request goes to
/// [`serve`](Self::serve), any other to the core routes. The server adds
/// `Cache-Control: no-store` and `X-Content-Type-Options: nosniff` when the response lacks
/// them. Bounding a request body it reads is the hook's job. The returned future runs on the
/// frontend's runtime: a hook shared by several frontends must not depend on one of them.
///
/// # Examples
/// ```
/// use diag_core::server::{DiagBody, RouteFuture, Routes};
/// use hyper::body::Incoming;
///
/// struct Hello;
/// impl Routes for Hello {
///     fn claims(&self, request: &hyper::Request<Incoming>) -> bool {
///         request.uri().path() == "/hello"
///     }
///     fn serve(&self, _request: hyper::Request<Incoming>) -> RouteFuture {
///         Box::pin(async { hyper::Response::new(DiagBody::full("hello\n")) })
///     }
/// }
/// ```
pub trait Routes: Send + Sync + 'static {
    /// Whether this hook answers `request`.
    fn claims(&self, request: &hyper::Request<Incoming>) -> bool;

    /// Answers a request [`claims`](Self::claims) accepted.
    fn serve(&self, request: hyper::Request<Incoming>) -> RouteFuture;
}
