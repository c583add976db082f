//! [`Routes`]: the hook through which an application serves extra routes (profiles, a log
//! level) before the core routes.

use core::future::Future;
use core::pin::Pin;
use std::boxed::Box;

use crate::server::{DiagBody, RouteBody};

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
/// use diag_core::server::{DiagBody, RouteBody, RouteFuture, Routes};
///
/// struct Hello;
/// impl Routes for Hello {
///     fn claims(&self, request: &hyper::Request<RouteBody>) -> bool {
///         request.uri().path() == "/hello"
///     }
///     fn serve(&self, _request: hyper::Request<RouteBody>) -> RouteFuture {
///         Box::pin(async { hyper::Response::new(DiagBody::full("hello\n")) })
///     }
///     fn paths(&self) -> &[&str] {
///         &["/hello"]
///     }
/// }
/// ```
pub trait Routes: Send + Sync + 'static {
    /// Whether this hook answers `request`.
    fn claims(&self, request: &hyper::Request<RouteBody>) -> bool;

    /// Answers a request [`claims`](Self::claims) accepted.
    fn serve(&self, request: hyper::Request<RouteBody>) -> RouteFuture;

    /// The paths this hook may claim, for routers that dispatch on the path before any
    /// service sees the request (axum's `Router`): `"/x"` stands for that path, `"/x/"` (a
    /// trailing slash) for it and every path below it. The built-in servers and
    /// [`Handler::call`](crate::server::Handler::call) ask [`claims`](Self::claims) on every
    /// request and do not need it. By default none: such a router then mounts no extra route.
    fn paths(&self) -> &[&str] {
        &[]
    }
}
