//! Write a query once, run it on either engine.
//!
//! `on_pool!(self.pool, |p| body)` and `on_tx!(tx, |conn| body)` expand the
//! same body once per engine, with `p`/`conn` bound to that engine's pool or
//! connection, so shared SQL and row decoding are not written twice.

macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match &$pool {
            $crate::connect::Pool::Sqlite($p) => $body,
            $crate::connect::Pool::Postgres($p) => $body,
        }
    };
}

macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match &mut $tx.inner {
            $crate::tx::TxInner::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::tx::TxInner::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}
