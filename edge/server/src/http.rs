//! The edge's HTTP surface on axum: every request the routers of `main.rs` do not hand to the
//! embedded node or the uploader's status pages is dispatched here by the core's route table
//! (`edgemeet_core::http`), and the core's answers become axum responses.

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use edgemeet_core::http::{self, Reply, Route, names_api};
use rand_core::OsRng;

use crate::AppState;

/// The most a request body is read to (the core's limits are far below: what is larger is
/// refused as too large without being read further).
const READ_LIMIT: usize = 2 * 1024 * 1024;

pub async fn dispatch(
    State(app): State<AppState>,
    peer: ConnectInfo<crate::tls::PeerAddr>,
    req: Request,
) -> Response {
    let method = req.method().as_str().to_owned();
    let route = http::route(&method, req.uri().path());
    let reply = match route {
        Route::Page => Reply::file("/index.html", app.web.index.to_vec()),
        Route::Asset(file) => crate::pages::asset(&app, &file).await,
        Route::Health => http::health(),
        Route::NamesRandom => names_api::random(&mut OsRng),
        Route::NamesCheck => match body(req).await {
            Ok(body) => names_api::check(&body),
            Err(refusal) => refusal,
        },
        Route::PageConfig => Reply::json(200, &app.public_config),
        Route::Metrics => return crate::pages::metrics(&app, req.headers()).await,
        Route::NotFound => http::not_found(),
        Route::MethodNotAllowed(allow) => http::method_not_allowed(allow),
        Route::RoomSocket { tenant, room } => {
            return crate::ws::upgrade(app, tenant, room, peer, req).await;
        }
        Route::NodeHeartbeat => {
            let headers = req.headers().clone();
            match body(req).await {
                Ok(body) => crate::nodes::heartbeat(&app, &headers, &body),
                Err(refusal) => refusal,
            }
        }
        Route::NodeEvents => {
            let headers = req.headers().clone();
            match body(req).await {
                Ok(body) => crate::nodes::events(&app, &headers, &body),
                Err(refusal) => refusal,
            }
        }
    };
    response(reply.for_method(&method))
}

/// A request's body, or the answer to one too large to read.
async fn body(req: Request) -> Result<Bytes, Reply> {
    axum::body::to_bytes(req.into_body(), READ_LIMIT)
        .await
        .map_err(|_| http::body_too_large())
}

/// A header's value as text, if it has one.
pub fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The core's answer as an axum response.
pub fn response(reply: Reply) -> Response {
    let mut res = Response::new(Body::from(Bytes::from(reply.body.into_owned())));
    *res.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), value);
        }
    }
    res
}

/// The security headers on every answer (the embedded node's `/node/*` and the uploader's status
/// pages too), the page's Content-Security-Policy unless the answer brought its own.
pub async fn security_headers(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, value) in http::SECURITY_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.entry(http::CSP_HEADER).or_insert_with(|| app.csp.clone());
    res
}

/// In front of the embedded node's router: its `/metrics` is served with the edge's own.
pub async fn hide_node_metrics(req: Request, next: Next) -> Response {
    if req.uri().path() == "/metrics" {
        return response(http::not_found());
    }
    next.run(req).await
}

/// An extractor run by hand on a request's parts (the socket upgrade).
pub async fn extract<T: FromRequestParts<AppState>>(
    app: &AppState,
    parts: &mut axum::http::request::Parts,
) -> Result<T, Response> {
    T::from_request_parts(parts, app)
        .await
        .map_err(IntoResponse::into_response)
}
