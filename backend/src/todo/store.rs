//! SQL for todo items. Queries are checked at run time (no database needed to build).

use super::model::{Todo, TodoFields};
use sqlx::PgPool;

const COLUMNS: &str = "id, title, description, status, due_date, created_at, updated_at";

/// Inserts a new item (the title is present: the caller validated it).
pub async fn create(pool: &PgPool, f: &TodoFields) -> Result<Todo, sqlx::Error> {
    crate::service_metrics::timed(
        "todo.create",
        sqlx::query_as::<_, Todo>(&format!(
            "INSERT INTO todos (title, description, status, due_date) \
         VALUES ($1, $2, COALESCE($3, 'pending'), $4) RETURNING {COLUMNS}"
        ))
        .bind(f.title.as_deref().unwrap_or_default())
        .bind(f.description.clone().flatten())
        .bind(f.status.as_deref())
        .bind(f.due_date.flatten())
        .fetch_one(pool),
    )
    .await
}

/// Items in id order, optionally only those with `status`.
pub async fn list(
    pool: &PgPool,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Todo>, sqlx::Error> {
    crate::service_metrics::timed(
        "todo.list",
        sqlx::query_as::<_, Todo>(&format!(
            "SELECT {COLUMNS} FROM todos WHERE ($1::text IS NULL OR status = $1) \
         ORDER BY id LIMIT $2 OFFSET $3"
        ))
        .bind(status)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool),
    )
    .await
}

/// One item.
pub async fn get(pool: &PgPool, id: i64) -> Result<Option<Todo>, sqlx::Error> {
    crate::service_metrics::timed(
        "todo.get",
        sqlx::query_as::<_, Todo>(&format!("SELECT {COLUMNS} FROM todos WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool),
    )
    .await
}

/// Changes the given fields of one item; `None` when it does not exist.
pub async fn update(pool: &PgPool, id: i64, f: &TodoFields) -> Result<Option<Todo>, sqlx::Error> {
    crate::service_metrics::timed(
        "todo.update",
        sqlx::query_as::<_, Todo>(&format!(
            "UPDATE todos SET \
           title = COALESCE($2, title), \
           description = CASE WHEN $3 THEN $4 ELSE description END, \
           status = COALESCE($5, status), \
           due_date = CASE WHEN $6 THEN $7 ELSE due_date END, \
           updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(f.title.as_deref())
        .bind(f.description.is_some())
        .bind(f.description.clone().flatten())
        .bind(f.status.as_deref())
        .bind(f.due_date.is_some())
        .bind(f.due_date.flatten())
        .fetch_optional(pool),
    )
    .await
}

/// Deletes one item; whether it existed.
pub async fn delete(pool: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let done = crate::service_metrics::timed(
        "todo.delete",
        sqlx::query("DELETE FROM todos WHERE id = $1")
            .bind(id)
            .execute(pool),
    )
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A trivial round trip, for the health check.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    crate::service_metrics::timed("todo.ping", sqlx::query("SELECT 1").execute(pool))
        .await
        .map(|_| ())
}
