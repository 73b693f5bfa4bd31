//! Device authorizations (RFC 8628): a device's request, found by the hash of its
//! `device_code` (the device polls with it) or of its `user_code` (the user types it at
//! `/device`). Approving stores the sign-in the grant will carry; the first poll after that
//! takes it, once, in the transaction that marks the code used.

use super::codes::AuthCode;
use super::schema::device_authorizations as da;
use super::{Store, StoreError, from_json_text, to_json_text};
use crate::audit::Event;
use crate::protocol::device_code::{PollAnswer, Polled, Status, poll};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use latchkey_core::ErrorCode;

/// A new device authorization.
#[derive(Debug, Clone)]
pub struct NewDeviceAuthorization {
    pub id: String,
    pub device_code_hash: Vec<u8>,
    pub user_code_hash: Vec<u8>,
    pub client_id: String,
    pub scope: String,
    /// The `acr_values` the device asked for, space-separated.
    pub acr_values: String,
    pub lab_hint: Option<String>,
    /// The resources (RFC 8707) the device asked for, space-separated.
    pub resources: String,
    pub interval: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A pending authorization, as the user's browser needs it to start a sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDevice {
    pub id: String,
    pub client_id: String,
    pub scope: String,
    pub acr_values: String,
    pub lab_hint: Option<String>,
    pub resources: String,
    pub expires_at: i64,
}

/// What a poll of the token endpoint found.
#[derive(Debug)]
pub enum DevicePoll {
    /// No authorization of this client has this device_code.
    Unknown,
    /// The approval, taken (the device_code is spent); its code-shaped data starts the grant
    /// as an authorization code would.
    Approved(Box<AuthCode>),
    /// An error for the device (`authorization_pending`, `slow_down`, `access_denied`,
    /// `expired_token`, `invalid_grant`).
    Refused(ErrorCode),
    /// The approval is there, but the caller's check refused this poll (its `resource`,
    /// RFC 8707): the approval stays for the next poll.
    Rejected(Box<crate::protocol::OAuthError>),
}

/// id, client_id, status, scope, interval_secs, last_polled_at, expires_at.
type PollRow = (String, String, String, String, i64, Option<i64>, i64);

type ApprovalRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

impl Store {
    /// Stores a new authorization; `false` when its device or user code is taken already
    /// (draw new ones).
    pub async fn create_device_authorization(
        &self,
        d: &NewDeviceAuthorization,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let d = d.clone();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                // Opportunistic clean-up: expired requests free their user codes.
                diesel::delete(da::table.filter(da::expires_at.lt(d.created_at)))
                    .execute(&mut *conn)
                    .await?;
                let n = diesel::insert_into(da::table)
                    .values((
                        da::id.eq(&d.id),
                        da::device_code_hash.eq(&d.device_code_hash),
                        da::user_code_hash.eq(&d.user_code_hash),
                        da::client_id.eq(&d.client_id),
                        da::scope.eq(&d.scope),
                        da::acr_values.eq(&d.acr_values),
                        da::lab_hint.eq(&d.lab_hint),
                        da::resources.eq(&d.resources),
                        da::status.eq(Status::Pending.as_str()),
                        da::interval_secs.eq(d.interval),
                        da::created_at.eq(d.created_at),
                        da::expires_at.eq(d.expires_at),
                    ))
                    .on_conflict_do_nothing()
                    .execute(&mut *conn)
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// The pending, unexpired authorization whose user code hashes to `user_code_hash`.
    pub async fn pending_device(
        &self,
        user_code_hash: &[u8],
        now: i64,
    ) -> Result<Option<PendingDevice>, StoreError> {
        let db = self.db.clone();
        let hash = user_code_hash.to_vec();
        self.run(async move {
            type Row = (String, String, String, String, Option<String>, i64, String);
            let row: Option<Row> =
                crate::with_conn!(&db, conn => da::table
                    .filter(da::user_code_hash.eq(&hash))
                    .filter(da::status.eq(Status::Pending.as_str()))
                    .filter(da::expires_at.gt(now))
                    .select((da::id, da::client_id, da::scope, da::acr_values, da::lab_hint, da::expires_at, da::resources))
                    .first(conn)
                    .await
                    .optional()?);
            Ok(row.map(|r| PendingDevice {
                id: r.0,
                client_id: r.1,
                scope: r.2,
                acr_values: r.3,
                lab_hint: r.4,
                expires_at: r.5,
                resources: r.6,
            }))
        })
        .await
    }

    /// Records the user's approval of pending authorization `id` with the sign-in `approval`
    /// carries (its `grant_id`, user, session, strength, lab and scope) and `event`, in one
    /// transaction; `false` when it is no longer pending or has expired.
    pub async fn approve_device(
        &self,
        id: &str,
        approval: &AuthCode,
        event: &Event,
        now: i64,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (id, a, event) = (id.to_owned(), approval.clone(), event.clone());
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    da::table
                        .find(&id)
                        .filter(da::status.eq(Status::Pending.as_str()))
                        .filter(da::expires_at.gt(now)),
                )
                .set((
                    da::status.eq(Status::Approved.as_str()),
                    da::grant_id.eq(Some(&a.grant_id)),
                    da::user_id.eq(Some(&a.user_id)),
                    da::session_id.eq(Some(&a.session_id)),
                    da::auth_time.eq(Some(a.auth_time)),
                    da::acr.eq(Some(&a.acr)),
                    da::amr.eq(Some(to_json_text(&a.amr))),
                    da::lab_id.eq(&a.lab_id),
                    da::scope.eq(&a.scope),
                ))
                .execute(&mut *conn)
                .await?;
                if n == 1 {
                    super::audit::append(&mut *conn, now, &event).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    /// Marks pending authorization `id` denied (the device's next poll is `access_denied`);
    /// `false` when it was not pending any more.
    pub async fn deny_device(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    da::table
                        .find(&id)
                        .filter(da::status.eq(Status::Pending.as_str()))
                        .filter(da::expires_at.gt(now)),
                )
                .set(da::status.eq(Status::Denied.as_str()))
                .execute(&mut *conn)
                .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// A poll by `client_id` with the device_code hashing to `hash`, answered by
    /// [`poll`]: the poll time is recorded (and a `slow_down` interval kept), and an approval
    /// is taken at most once (of two racing polls, one gets it; the other is `invalid_grant`).
    /// `check` decides, before the approval is taken, whether this poll may have it.
    pub async fn poll_device(
        &self,
        hash: &[u8],
        client_id: &str,
        now: i64,
        check: impl FnOnce(&AuthCode) -> Result<(), crate::protocol::OAuthError> + Send + 'static,
    ) -> Result<DevicePoll, StoreError> {
        let db = self.db.clone();
        let (hash, client) = (hash.to_vec(), client_id.to_owned());
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let row: Option<PollRow> = da::table
                    .filter(da::device_code_hash.eq(&hash))
                    .select((
                        da::id,
                        da::client_id,
                        da::status,
                        da::scope,
                        da::interval_secs,
                        da::last_polled_at,
                        da::expires_at,
                    ))
                    .first(&mut *conn)
                    .await
                    .optional()?;
                // Another client's device_code is as unknown as a made-up one.
                let Some((id, owner, status, scope, interval, last_polled_at, expires_at)) = row
                else {
                    return Ok(DevicePoll::Unknown);
                };
                if owner != client {
                    return Ok(DevicePoll::Unknown);
                }
                let status = Status::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("device status `{status}`")))?;
                let polled = Polled { status, expires_at, interval, last_polled_at };
                match poll(polled, now) {
                    PollAnswer::Refuse { code, interval } => {
                        diesel::update(da::table.find(&id))
                            .set((da::last_polled_at.eq(Some(now)), da::interval_secs.eq(interval)))
                            .execute(&mut *conn)
                            .await?;
                        Ok(DevicePoll::Refused(code))
                    }
                    PollAnswer::Issue => {
                        let a: ApprovalRow = da::table
                            .find(&id)
                            .select((
                                da::grant_id,
                                da::user_id,
                                da::session_id,
                                da::auth_time,
                                da::acr,
                                da::amr,
                                da::lab_id,
                                da::resources,
                            ))
                            .first(&mut *conn)
                            .await?;
                        let missing = || StoreError::Corrupt("an approved device authorization without its sign-in".into());
                        let approval = AuthCode {
                            grant_id: a.0.ok_or_else(missing)?,
                            client_id: owner,
                            user_id: a.1.ok_or_else(missing)?,
                            session_id: a.2.ok_or_else(missing)?,
                            redirect_uri: String::new(),
                            scope,
                            nonce: None,
                            code_challenge: None,
                            auth_time: a.3.ok_or_else(missing)?,
                            acr: a.4.ok_or_else(missing)?,
                            amr: from_json_text(&a.5.ok_or_else(missing)?)?,
                            lab_id: a.6,
                            dpop_jkt: None,
                            resources: crate::protocol::resource::split(&a.7),
                            expires_at,
                        };
                        // The request's own refusal (its `resource`) leaves the approval for
                        // the next poll.
                        if let Err(e) = check(&approval) {
                            diesel::update(da::table.find(&id))
                                .set(da::last_polled_at.eq(Some(now)))
                                .execute(&mut *conn)
                                .await?;
                            return Ok(DevicePoll::Rejected(Box::new(e)));
                        }
                        let taken = diesel::update(
                            da::table.find(&id).filter(da::status.eq(Status::Approved.as_str())),
                        )
                        .set((da::status.eq(Status::Used.as_str()), da::last_polled_at.eq(Some(now))))
                        .execute(&mut *conn)
                        .await?;
                        if taken != 1 {
                            return Ok(DevicePoll::Refused(ErrorCode::InvalidGrant));
                        }
                        Ok(DevicePoll::Approved(Box::new(approval)))
                    }
                }
            })
        })
        .await
    }
}
