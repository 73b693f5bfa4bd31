//! The refresh grant's fast path (store/refresh_rotation.rs) reads outside any transaction and
//! then spends the token with one conditional write, committed in a group with other refreshes'
//! (store/refresh_spends.rs). That write is the race guard: whatever changed since the read (a
//! concurrent use of the same token, a revocation), it spends only an unspent token of a live
//! grant, on both databases, however the spends are grouped.

use crate::both;
use crate::common::*;
use latchkey_server::secret::TokenHash;

both!(
    rfc9700_4_14_a_refresh_token_is_spent_only_while_unspent_and_its_grant_live,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let secret = c.client_secret.clone().unwrap();
        let t = user_tokens(app, &c.client_id, &secret, "openid").await;
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let store = &app.state.store;
        let old = TokenHash::of(&rt);
        let (grant, current) = store
            .grant_by_refresh_token(old.clone())
            .await
            .unwrap()
            .unwrap();
        assert!(current);
        let now = latchkey_server::store::now();
        let (new1, new2) = (TokenHash::of("lk_rt_new-1"), TokenHash::of("lk_rt_new-2"));

        // Revoked between the fast path's read and its write: nothing is spent.
        tamper(
            app,
            &format!(
                "UPDATE grants SET revoked_at = {now} WHERE id = '{}'",
                grant.id
            ),
        )
        .await;
        assert!(
            !store
                .spend_current_refresh_token((&old, &new1), &grant.id, now)
                .await
                .unwrap()
        );
        let (_, current) = store
            .grant_by_refresh_token(old.clone())
            .await
            .unwrap()
            .unwrap();
        assert!(current, "a refused spend leaves the token as it was");
        assert!(
            store
                .grant_by_refresh_token(new1.clone())
                .await
                .unwrap()
                .is_none()
        );
        tamper(
            app,
            &format!(
                "UPDATE grants SET revoked_at = NULL WHERE id = '{}'",
                grant.id
            ),
        )
        .await;

        // Another grant's id: refused.
        assert!(
            !store
                .spend_current_refresh_token((&old, &new1), "g-other", now)
                .await
                .unwrap()
        );
        // Expired at `t`: refused.
        assert!(
            !store
                .spend_current_refresh_token((&old, &new1), &grant.id, grant.expires_at)
                .await
                .unwrap()
        );

        // Live and unspent: spent once, its successor stored in the family.
        assert!(
            store
                .spend_current_refresh_token((&old, &new1), &grant.id, now)
                .await
                .unwrap()
        );
        let (g, current) = store
            .grant_by_refresh_token(new1.clone())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((g.id.as_str(), current), (grant.id.as_str(), true));
        // Spent already (a concurrent use that lost): refused, no second successor.
        assert!(
            !store
                .spend_current_refresh_token((&old, &new2), &grant.id, now)
                .await
                .unwrap()
        );
        assert!(store.grant_by_refresh_token(new2).await.unwrap().is_none());
        let (_, current) = store.grant_by_refresh_token(old).await.unwrap().unwrap();
        assert!(!current);
    }
);

both!(
    rfc9700_4_14_spends_committed_together_each_keep_their_own_conditions,
    async |app: &TestApp| {
        // Refreshes commit their spends in groups (store/refresh_spends.rs). Spends sent at
        // once land in as few commits as the store makes of them; whatever the grouping, a
        // token spent many times at once is spent once, and each spend is decided on its own.
        let c = app.client(|_| {}).await;
        let secret = c.client_secret.clone().unwrap();
        let store = &app.state.store;
        let mut olds = vec![];
        for _ in 0..2 {
            let t = user_tokens(app, &c.client_id, &secret, "openid").await;
            let old = TokenHash::of(t["refresh_token"].as_str().unwrap());
            let (grant, _) = store
                .grant_by_refresh_token(old.clone())
                .await
                .unwrap()
                .unwrap();
            olds.push((old, grant.id));
        }
        let [(a, ga), (b, gb)] = <[_; 2]>::try_from(olds).unwrap();
        let now = latchkey_server::store::now();
        let mut set = tokio::task::JoinSet::new();
        let spend = |set: &mut tokio::task::JoinSet<(TokenHash, bool)>,
                     old: &TokenHash,
                     new: String,
                     g: &str| {
            let (store, old, g) = (store.clone(), old.clone(), g.to_owned());
            set.spawn(async move {
                let new = TokenHash::of(&new);
                let spent = store
                    .spend_current_refresh_token((&old, &new), &g, now)
                    .await
                    .unwrap();
                (new, spent)
            });
        };
        for i in 0..16 {
            spend(&mut set, &a, format!("lk_rt_a-{i}"), &ga);
        }
        spend(&mut set, &b, "lk_rt_b-wrong-grant".into(), &ga);
        spend(&mut set, &b, "lk_rt_b-1".into(), &gb);
        let outcomes = set.join_all().await;
        let won: Vec<&TokenHash> = outcomes.iter().filter(|o| o.1).map(|o| &o.0).collect();
        assert_eq!(won.len(), 2, "one spend of a, one of b");
        assert!(won.contains(&&TokenHash::of("lk_rt_b-1")));
        for (new, spent) in &outcomes {
            let stored = store.grant_by_refresh_token(new.clone()).await.unwrap();
            assert_eq!(
                stored.is_some(),
                *spent,
                "a successor is stored iff its spend won"
            );
        }
        for old in [a, b] {
            let (_, current) = store.grant_by_refresh_token(old).await.unwrap().unwrap();
            assert!(!current);
        }
    }
);
