//! Login flows: a validated authorization request waiting for the user, bound to the browser
//! that started it (a login-CSRF defence: another browser cannot finish it).

use super::schema::login_flows;
use super::{Store, StoreError, from_json_text, now, to_json_text};
use crate::protocol::authorize::AuthRequest;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

#[derive(Debug, Clone)]
pub struct LoginFlow {
    pub id: String,
    pub browser_hash: Vec<u8>,
    pub request: AuthRequest,
    pub expires_at: i64,
}

impl Store {
    pub async fn create_flow(&self, flow: &LoginFlow) -> Result<(), StoreError> {
        let db = self.db.clone();
        let f = flow.clone();
        let t = now();
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                // Opportunistic clean-up of abandoned flows keeps the table small.
                diesel::delete(login_flows::table.filter(login_flows::expires_at.lt(t)))
                    .execute(conn)
                    .await?;
                diesel::insert_into(login_flows::table)
                    .values((
                        login_flows::id.eq(&f.id),
                        login_flows::browser_hash.eq(&f.browser_hash),
                        login_flows::request.eq(to_json_text(&f.request)),
                        login_flows::created_at.eq(t),
                        login_flows::expires_at.eq(f.expires_at),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// A flow that has not expired.
    pub async fn get_flow(&self, id: &str) -> Result<Option<LoginFlow>, StoreError> {
        let id = id.to_owned();
        let t = now();
        let row: Option<(String, Vec<u8>, String, i64)> = crate::quick_read!(self, conn => Ok(
            login_flows::table
                .find(&id)
                .filter(login_flows::expires_at.gt(t))
                .select((
                    login_flows::id,
                    login_flows::browser_hash,
                    login_flows::request,
                    login_flows::expires_at,
                ))
                .first(conn)
                .await
                .optional()?
        ))?;
        row.map(|(id, browser_hash, req, expires_at)| {
            Ok(LoginFlow {
                id,
                browser_hash,
                request: from_json_text(&req)?,
                expires_at,
            })
        })
        .transpose()
    }

    /// Stores the flow's request after a step changed it (e.g. the user authenticated).
    pub async fn update_flow_request(
        &self,
        id: &str,
        request: &AuthRequest,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let json = to_json_text(request);
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                diesel::update(login_flows::table.find(&id))
                    .set(login_flows::request.eq(&json))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Removes a finished flow; returns false when it was already gone (double submit).
    pub async fn finish_flow(&self, id: &str) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::delete(login_flows::table.find(&id)).execute(conn).await?;
                Ok(n == 1)
            })
        })
        .await
    }
}
