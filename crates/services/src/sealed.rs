//! Where services get the box that seals secrets at rest: the store
//! carries it ([`Store::with_secrets`], set at start-up from `secrets_key`).
//! Values are sealed when written and opened only where they are used.

use mpanel_store::Store;
use mpanel_store::secret_box::SecretBox;

use crate::ServiceError;

/// The box, or an internal error when this store was opened without one
/// (a production start refuses to run without `secrets_key`).
pub fn secret_box(store: &Store) -> Result<&SecretBox, ServiceError> {
    store.secrets().ok_or_else(|| {
        ServiceError::internal_msg(
            "no secrets_key is configured: secrets at rest cannot be sealed or opened",
        )
    })
}
