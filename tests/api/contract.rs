//! The admin API's contract is served by the service itself, without the
//! token (a client generator reads it first), as `payhook openapi` writes it.

use crate::helpers::{both_backends, Backend, TestApp};

async fn the_openapi_document_is_served_on_the_admin_listener(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    let body = response.text().await.unwrap();
    assert_eq!(body, payhook::http::openapi::document_json());
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    // Every other operation wants the token, and says so.
    assert_eq!(
        document["security"][0]["admin_token"],
        serde_json::json!([])
    );
    let public = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        public.status(),
        404,
        "the contract is on the admin listener only"
    );
}

both_backends!(the_openapi_document_is_served_on_the_admin_listener);
