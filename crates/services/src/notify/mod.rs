//! E-mail: how this installation sends it (more to come).

pub mod settings;

pub use settings::MailSettings;
