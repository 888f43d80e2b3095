//! Provisioning rules: the servers mPanel places accounts on, and where a
//! new account goes.

pub mod disk_quota;
pub mod error_text;
pub mod payloads;
pub mod server;
pub mod ssh_key;
pub mod status;
pub mod steps;

pub use server::{ServerRole, ServerStatus, place};
pub use status::{ResourceStatus, StepState};
pub use steps::{
    MAIL_CREATE_JOB, MAIL_PASSWORD_JOB, PROVISION_JOB, SFTP_JOB, SUSPEND_JOB, Step, TERMINATE_JOB,
    UNSUSPEND_JOB, plan,
};
