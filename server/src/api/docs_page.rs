//! `GET /api/docs`: the OpenAPI document (`/api/openapi.json`) as a page to read and try, Swagger UI.
//! Its script and stylesheet are this server's own (the npm package `swagger-ui-dist`, copied into
//! the site by the build, linked by content hash), so the page works without the internet; and it
//! asks no validator service to check the document.

use crate::assets::Assets;
use axum::{extract::State, response::Html};

pub async fn page(State(assets): State<Assets>) -> Html<String> {
    let script = assets.url("/vendor/swagger-ui/swagger-ui-bundle.js");
    let style = assets.url("/vendor/swagger-ui/swagger-ui.css");
    Html(format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>livedash HTTP API</title>
<link rel="stylesheet" href="{style}">
</head>
<body>
<main id="api"></main>
<script src="{script}"></script>
<script>
SwaggerUIBundle({{ url: "/api/openapi.json", dom_id: "#api", deepLinking: true, validatorUrl: null, tryItOutEnabled: false }});
</script>
</body>
</html>
"##
    ))
}
