//! The account page's list of signed-in browsers: each live session with its browser, address
//! and times; another browser signed out from it (what it was issued ends as at sign-out);
//! nobody else's session, and not the page's own, can be named.

use crate::both;
use crate::common::*;
use serde_json::Value;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                      Gecko) Chrome/130.0.0.0 Safari/537.36";

/// The `data-session` ids the account page of `b` lists.
async fn listed(b: &Browser) -> Vec<String> {
    let html = b.get("/account").await.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("ul.sessions li").unwrap();
    doc.select(&sel)
        .map(|e| e.value().attr("data-session").unwrap().to_owned())
        .collect()
}

async fn end(b: &Browser, id: &str) -> reqwest::Response {
    let csrf = account_csrf(b).await;
    b.post_form("/account/sessions/end", &[("csrf", &csrf), ("session", id)])
        .await
}

both!(
    account_page_lists_signed_in_browsers_and_signs_another_out,
    async |app: &TestApp| {
        let a = Browser::with_user_agent(app, FIREFOX);
        account_sign_in(&a).await;
        let b = Browser::with_user_agent(app, CHROME);
        account_sign_in(&b).await;
        let html = a.get("/account").await.text().await.unwrap();
        assert!(
            html.contains("Firefox on Linux</strong> <span class=\"muted\">(this browser)"),
            "{html}"
        );
        assert!(html.contains("Chrome on Windows"), "{html}");
        assert!(html.contains("127.0.0.1 · signed in"), "{html}");
        let ids = listed(&a).await;
        assert_eq!(ids.len(), 2);
        // b's id, from b's own page, where it is "this browser".
        let html_b = b.get("/account").await.text().await.unwrap();
        let doc = scraper::Html::parse_document(&html_b);
        let sel = scraper::Selector::parse("ul.sessions li").unwrap();
        let b_id = doc
            .select(&sel)
            .find(|e| e.text().any(|t| t.contains("(this browser)")))
            .and_then(|e| e.value().attr("data-session"))
            .unwrap()
            .to_owned();
        let r = end(&a, &b_id).await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), "/account");
        let r = b.get("/account").await;
        assert_eq!(r.status(), 303, "b is signed out");
        assert_eq!(listed(&a).await.len(), 1);
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        let e = events
            .iter()
            .rfind(|e| e.action == "session.ended")
            .expect("audited");
        let d: Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(d["session"], b_id.as_str());
    }
);

both!(
    account_page_signs_out_only_the_users_other_browsers,
    async |app: &TestApp| {
        let other_user = latchkey_server::provision::create_user(
            &app.state.store,
            &app.state.config,
            &app.state.hasher,
            &app.lab_id,
            "bob@lab.example",
            None,
            PASSWORD,
        )
        .await
        .unwrap();
        let bob = Browser::new(app);
        let r = bob.get("/account").await;
        let html = bob.get(&location(&r)).await.text().await.unwrap();
        let (flow, csrf) = (
            html_input(&html, "flow").unwrap(),
            html_input(&html, "csrf").unwrap(),
        );
        let r = bob
            .submit_login(&flow, &csrf, "bob@lab.example", PASSWORD)
            .await;
        assert_eq!(location(&r), "/account");
        let bob_session = listed(&bob).await.remove(0);
        let a = Browser::new(app);
        account_sign_in(&a).await;
        let own = listed(&a).await.remove(0);
        for id in [bob_session.as_str(), own.as_str(), "no-such-session"] {
            let html = end(&a, id).await.text().await.unwrap();
            assert!(
                html.contains("That browser is not signed in"),
                "{id}: {html}"
            );
        }
        assert_eq!(
            bob.get("/account").await.status(),
            200,
            "bob stays signed in"
        );
        assert_eq!(a.get("/account").await.status(), 200);
        let events = app.state.store.audit_for(&other_user.id).await.unwrap();
        assert!(!events.iter().any(|e| e.action == "session.ended"));
    }
);
