//! The reference bench/load.sh measures mPanel's `GET
//! /api/billing/invoices/{id}` against: a bare axum + sqlx handler that
//! reads the same invoice row by primary key from the same database and
//! answers it as JSON. No authentication, no tenant, no middleware, no
//! invoice lines: the floor a web handler on this stack can reach.
//!
//! `bare-invoice DATABASE_URL PORT`: `sqlite://PATH` (an mPanel database,
//! opened as mPanel opens it) or `postgres://…`; serves `GET
//! /invoices/{id}` on 127.0.0.1:PORT with a pool of 10 connections (mPanel's
//! default `database_max_connections` on PostgreSQL; on SQLite mPanel's is
//! twice the cores up to 10; its figure here did not change with its pool
//! at 2, 4 or 10 on 2 cores).
#![forbid(unsafe_code)]

use std::str::FromStr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Map, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::types::Json as SqlJson;
use sqlx::{Row, postgres::PgConnectOptions};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// The columns mPanel's store reads for one invoice
/// (crates/store/src/billing/invoices.rs, `COLUMNS`).
const SQL: &str = "SELECT id, tenant_id, customer_id, order_id, status, number, currency, tax_mode, \
     subtotal_minor, tax_minor, total_minor, paid_minor, credited_minor, refunded_minor, \
     customer_snapshot, seller_snapshot, notes, disputed, issued_at, due_at, paid_at, voided_at, \
     created_at, updated_at FROM invoices WHERE id = $1";

const POOL_SIZE: u32 = 10;

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

type Answer = Result<Json<Value>, (StatusCode, String)>;

fn time_value(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// The row as a JSON object, the same on both engines.
macro_rules! row_json {
    ($row:expr) => {{
        let row = $row;
        let mut m = Map::new();
        let id: Uuid = row.try_get("id")?;
        m.insert("id".into(), Value::String(id.to_string()));
        for c in ["tenant_id", "customer_id", "order_id"] {
            let v: Option<Uuid> = row.try_get(c)?;
            m.insert(
                c.into(),
                v.map_or(Value::Null, |u| Value::String(u.to_string())),
            );
        }
        for c in ["status", "number", "currency", "tax_mode"] {
            let v: Option<String> = row.try_get(c)?;
            m.insert(c.into(), v.map_or(Value::Null, Value::String));
        }
        for c in [
            "subtotal_minor",
            "tax_minor",
            "total_minor",
            "paid_minor",
            "credited_minor",
            "refunded_minor",
        ] {
            let v: i64 = row.try_get(c)?;
            m.insert(c.into(), Value::from(v));
        }
        for c in ["customer_snapshot", "seller_snapshot", "notes"] {
            let v: Option<SqlJson<Value>> = row.try_get(c)?;
            m.insert(c.into(), v.map_or(Value::Null, |j| j.0));
        }
        let disputed: bool = row.try_get("disputed")?;
        m.insert("disputed".into(), Value::Bool(disputed));
        for c in [
            "issued_at",
            "due_at",
            "paid_at",
            "voided_at",
            "created_at",
            "updated_at",
        ] {
            let v: Option<OffsetDateTime> = row.try_get(c)?;
            m.insert(c.into(), time_value(v));
        }
        Value::Object(m)
    }};
}

async fn fetch(db: &Db, id: Uuid) -> Result<Option<Value>, sqlx::Error> {
    Ok(match db {
        Db::Sqlite(p) => match sqlx::query(SQL).bind(id).fetch_optional(p).await? {
            Some(row) => Some(row_json!(&row)),
            None => None,
        },
        Db::Postgres(p) => match sqlx::query(SQL).bind(id).fetch_optional(p).await? {
            Some(row) => Some(row_json!(&row)),
            None => None,
        },
    })
}

async fn invoice(State(db): State<Db>, Path(id): Path<String>) -> Answer {
    let id = Uuid::parse_str(&id).map_err(|_| (StatusCode::BAD_REQUEST, "bad id".to_owned()))?;
    match fetch(&db, id).await {
        Ok(Some(v)) => Ok(Json(v)),
        Ok(None) => Err((StatusCode::NOT_FOUND, "no such invoice".to_owned())),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// Opened as mPanel's store opens it (crates/store/src/connect.rs).
async fn connect(url: &str) -> Result<Db, sqlx::Error> {
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .pragma("cache_size", "-65536")
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Db::Sqlite(pool))
    } else {
        let options = PgConnectOptions::from_str(url)?.application_name("bare-invoice");
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Db::Postgres(pool))
    }
}

async fn run(url: &str, port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let db = connect(url).await?;
    let app = Router::new()
        .route("/invoices/{id}", get(invoice))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(port)) = (args.get(1), args.get(2).and_then(|p| p.parse::<u16>().ok()))
    else {
        eprintln!("usage: bare-invoice DATABASE_URL PORT");
        return std::process::ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bare-invoice: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(url, port)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-invoice: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
