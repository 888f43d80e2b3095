//! The console's static files, compiled into the binary: the stylesheet,
//! htmx (2.0.11, vendored, 0BSD) and a small script of our own. Each is
//! linked with a content hash in its address (cached for a year, a new
//! release a new address) and its subresource-integrity hash.

use std::sync::LazyLock;

use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: [Asset; 3] = [
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/console.css"),
    },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/htmx-2.0.11.min.js"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/console.js"),
    },
];

/// One asset's address and integrity value, for the templates.
#[derive(Serialize)]
pub struct Link {
    pub href: String,
    pub integrity: String,
}

/// The links every page's frame carries.
#[derive(Serialize)]
pub struct Links {
    pub css: Link,
    pub htmx: Link,
    pub js: Link,
}

fn version(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn link(asset: &Asset) -> Link {
    Link {
        href: format!("/static/{}?v={}", asset.name, version(asset.body)),
        integrity: format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(Sha384::digest(asset.body))
        ),
    }
}

static LINKS: LazyLock<Links> = LazyLock::new(|| {
    let [css, htmx, js] = &ASSETS;
    Links {
        css: link(css),
        htmx: link(htmx),
        js: link(js),
    }
});

pub fn links() -> &'static Links {
    &LINKS
}

#[derive(Deserialize)]
pub struct Versioned {
    v: Option<String>,
}

/// `GET /static/{name}`: immutable when asked for by its current hash.
pub async fn serve(Path(name): Path<String>, Query(q): Query<Versioned>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = if q.v.as_deref() == Some(version(asset.body).as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut res = asset.body.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}
