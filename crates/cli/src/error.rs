//! `CliError`: every way a client verb fails, each with its exit code (lib.rs `EXIT_*`).

use crate::{EXIT_FAILED, EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_USAGE};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CliError {
    /// Bad input from the operator: a flag value, FILE.json, an ambiguous id prefix.
    #[error("{0}")]
    Usage(String),
    /// Nothing answered at `address`.
    #[error("cannot reach {address}: {reason}")]
    Unreachable { address: String, reason: String },
    /// Something answered, but no leader is elected (or none is known).
    #[error("no leader at {address}: {reason}")]
    NoLeader { address: String, reason: String },
    /// The app, task or deployment does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The API answered with an error status; `message` is its explanation.
    #[error("{method} {url} answered {status}: {message}")]
    Refused {
        method: String,
        url: String,
        status: u16,
        message: String,
    },
    /// The operation ran but did not reach its goal (deployment cancelled, rolled back).
    #[error("{0}")]
    Failed(String),
    /// An answer that cannot be understood (not JSON, missing fields).
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Unreachable { .. } | CliError::NoLeader { .. } => EXIT_UNREACHABLE,
            CliError::NotFound(_) => EXIT_NOT_FOUND,
            CliError::Refused { .. } | CliError::Failed(_) | CliError::BadAnswer { .. } => {
                EXIT_FAILED
            }
        }
    }
}
