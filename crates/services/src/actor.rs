//! Who is acting, as recorded in the audit log.

use mpanel_store::ActorType;
use uuid::Uuid;

use crate::identity::Principal;

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

    /// A signed-in user or API token, acting in request `request_id`.
    pub fn principal(p: &Principal, request_id: Option<String>) -> Self {
        match p.api_token_id {
            Some(token) => Self {
                kind: ActorType::ApiToken,
                id: Some(p.user_id.as_uuid()),
                label: format!("{} (token {token})", p.email),
                request_id,
            },
            None => Self {
                kind: ActorType::User,
                id: Some(p.user_id.as_uuid()),
                label: p.email.clone(),
                request_id,
            },
        }
    }
}
