//! Which face of an endpoint a request wants: the web UI's (HTML pages,
//! HTML forms) or the JSON API's. Each endpoint serves both from one path,
//! so the approval link an agent hands out opens in a browser as a page.

use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use std::sync::Arc;

use crate::state::Gateway;

/// True when the client prefers `text/html` to JSON: `Accept` names
/// `text/html` (or XHTML) with a weight above zero and at least that of
/// `application/json`. A missing `Accept`, or `*/*` alone, means JSON, as
/// API clients have always been answered.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return false };
    let mut html = 0.0_f32;
    let mut json = 0.0_f32;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = html.max(weight),
            "application/json" => json = json.max(weight),
            _ => {}
        }
    }
    html > 0.0 && html >= json
}

/// True when the body is an HTML form (`application/x-www-form-urlencoded`).
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// A route that answers with `html` when the client prefers HTML and sends
/// no `Authorization` (a script with a token wants the API), and with `json`
/// otherwise; the response says it varies by `Accept`.
pub fn by_accept<J, JT, H, HT>(filter: MethodFilter, json: J, html: H) -> MethodRouter<Arc<Gateway>>
where
    J: Handler<JT, Arc<Gateway>>,
    H: Handler<HT, Arc<Gateway>>,
    JT: 'static,
    HT: 'static,
{
    on(filter, move |State(gateway): State<Arc<Gateway>>, request: Request| {
        let (json, html) = (json.clone(), html.clone());
        async move {
            let page = prefers_html(request.headers()) && !request.headers().contains_key(header::AUTHORIZATION);
            let mut response: Response =
                if page { html.call(request, gateway).await } else { json.call(request, gateway).await };
            response.headers_mut().append(header::VARY, HeaderValue::from_static("accept"));
            response
        }
    })
}

/// A route that takes a browser's HTML form with `form` and anything else
/// with `json`: a form body from a client that prefers HTML and sends no
/// `Authorization` (an API client's mistaken form body gets the API's 415,
/// never a page or a sign-in redirect).
pub fn by_body<J, JT, F, FT>(filter: MethodFilter, json: J, form: F) -> MethodRouter<Arc<Gateway>>
where
    J: Handler<JT, Arc<Gateway>>,
    F: Handler<FT, Arc<Gateway>>,
    JT: 'static,
    FT: 'static,
{
    on(filter, move |State(gateway): State<Arc<Gateway>>, request: Request| {
        let (json, form) = (json.clone(), form.clone());
        async move {
            let headers = request.headers();
            let browser = is_form(headers) && prefers_html(headers) && !headers.contains_key(header::AUTHORIZATION);
            let response: Response =
                if browser { form.call(request, gateway).await } else { json.call(request, gateway).await };
            response
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        prefers_html(&headers)
    }

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(accept(chromium));
        assert!(!prefers_html(&HeaderMap::new()), "no Accept: JSON, as before");
        assert!(!accept("*/*"), "curl's default");
        assert!(!accept("application/json"));
        assert!(!accept("application/json, text/html;q=0.5"));
        assert!(accept("text/html;q=0.5, application/json;q=0.5"), "a tie goes to the page");
        assert!(!accept("text/html;q=0"), "q=0 means not acceptable");
    }
}
