//! Labs: the tenants users belong to.

use super::schema::labs;
use super::{Store, StoreError, conflict, now};
use crate::audit::Event;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = labs)]
pub struct Lab {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

impl Store {
    /// Creates a lab and records the audit entries `events` gives for it, in one transaction.
    pub async fn create_lab(
        &self,
        name: &str,
        events: impl FnOnce(&Lab) -> Vec<Event>,
    ) -> Result<Lab, StoreError> {
        let lab = Lab {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_owned(),
            created_at: now(),
        };
        let db = self.db.clone();
        let row = lab.clone();
        let events = events(&lab);
        let t = lab.created_at;
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::insert_into(labs::table)
                    .values((labs::id.eq(&row.id), labs::name.eq(&row.name), labs::created_at.eq(row.created_at)))
                    .execute(conn)
                    .await
                    .map_err(|e| conflict(e, "a lab with this name already exists"))?;
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(())
            })
        })
        .await?;
        Ok(lab)
    }

    /// Finds a lab by id, else by name (an id wins over another lab's name equal to it). No
    /// lab's id or name holds a NUL, which PostgreSQL could not even compare.
    pub async fn find_lab(&self, id_or_name: &str) -> Result<Option<Lab>, StoreError> {
        if id_or_name.contains('\0') {
            return Ok(None);
        }
        let db = self.db.clone();
        let key = id_or_name.to_owned();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => {
                let by_id = labs::table
                    .filter(labs::id.eq(&key))
                    .select(Lab::as_select())
                    .first(&mut *conn)
                    .await
                    .optional()?;
                match by_id {
                    Some(lab) => Some(lab),
                    None => labs::table
                        .filter(labs::name.eq(&key))
                        .select(Lab::as_select())
                        .first(&mut *conn)
                        .await
                        .optional()?,
                }
            }))
        })
        .await
    }
}
