//! Who is acting, as recorded in the audit log.

use mpanel_store::ActorType;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorType,
    pub id: Option<Uuid>,
    pub label: String,
    /// The HTTP request this action belongs to, if any.
    pub request_id: Option<String>,
}

impl Actor {
    /// An operator at a node's command line.
    pub fn cli(operator: &str) -> Self {
        Self {
            kind: ActorType::Cli,
            id: None,
            label: format!("cli:{operator}"),
            request_id: None,
        }
    }
}
