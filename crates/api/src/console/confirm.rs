//! What a confirmation page asks before a destructive action.

use serde::Serialize;

#[derive(Serialize)]
pub struct Question {
    pub title: String,
    pub detail: String,
    /// Where the form posts.
    pub action: String,
    pub button: String,
    /// Where "cancel" leads.
    pub back: String,
}

/// A question with the fields its form posts back.
#[derive(Serialize)]
pub struct WithFields<'a> {
    #[serde(flatten)]
    pub question: Question,
    pub fields: Vec<(&'a str, &'a str)>,
}
