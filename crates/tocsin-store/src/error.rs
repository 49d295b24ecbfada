use tocsin_core::change::ConfirmRefused;
use tocsin_core::incident::TransitionRefused;
use tocsin_core::Invalid;

/// Everything the store can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `incident INC-4`.
        what: String,
    },
    /// Input failed validation.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A lifecycle move the table does not allow.
    #[error(transparent)]
    Transition(#[from] TransitionRefused),
    /// A closure confirmation that cannot be made.
    #[error(transparent)]
    Confirm(#[from] ConfirmRefused),
    /// The change conflicts with what is stored (a unique name, a reference).
    #[error("{message}")]
    Conflict {
        /// The field in conflict.
        field: String,
        /// Explanation.
        message: String,
    },
    /// Asked again too soon or too often; may be asked again after `retry_after_secs`
    /// (0: not by waiting, only by starting over, e.g. with a new verification code).
    #[error("{message}")]
    TooSoon {
        /// Machine-readable code, e.g. `verification_too_soon`.
        code: &'static str,
        /// Explanation.
        message: String,
        /// Seconds until asking again can work.
        retry_after_secs: u64,
    },
    /// The write did not happen and may be retried (a batch failed to commit).
    #[error("{0}")]
    Unavailable(String),
    /// The store is misconfigured.
    #[error("{0}")]
    Config(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }

    pub(crate) fn conflict(field: &str, message: impl Into<String>) -> Self {
        StoreError::Conflict {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Turns a unique-constraint violation into a conflict on `field`.
pub(crate) fn unique(
    field: &'static str,
    what: &'static str,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::conflict(field, format!("{what} is already taken"))
        }
        _ => StoreError::Database(e),
    }
}
