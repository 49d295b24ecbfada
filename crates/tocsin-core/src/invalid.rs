//! The one error every parser in core returns: what was wrong, and where.

/// A value that failed to parse or validate, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// Dotted path of the offending input field, e.g. `custom_fields.region`.
    pub field: String,
    /// Human-readable explanation of what is wrong.
    pub message: String,
}

impl Invalid {
    /// Builds an error for `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
