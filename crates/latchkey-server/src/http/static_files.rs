//! The hosted pages' stylesheet and the one script (form_post auto-submit), embedded in the
//! binary so `latchkey serve` needs no files beside it.

use actix_web::{HttpResponse, web};

const CSS: &str = include_str!("../../../../templates/static/latchkey.css");
const FORM_POST_JS: &str = include_str!("../../../../templates/static/form_post.js");
const WEBAUTHN_JS: &str = include_str!("../../../../templates/static/webauthn.js");

pub async fn serve(file: web::Path<String>) -> HttpResponse {
    let (body, ctype) = match file.as_str() {
        "latchkey.css" => (CSS, "text/css; charset=utf-8"),
        "form_post.js" => (FORM_POST_JS, "text/javascript; charset=utf-8"),
        "webauthn.js" => (WEBAUTHN_JS, "text/javascript; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .content_type(ctype)
        .body(body)
}
