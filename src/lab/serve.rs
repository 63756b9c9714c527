//! `sockmap serve`: the fork server. (Being written.)

use std::io::Write;

use super::ServeConfig;
use crate::error::{Error, Result};

/// Run the server until SIGINT/SIGTERM.
pub fn run(_cfg: &ServeConfig, _out: &mut dyn Write) -> Result<()> {
    Err(Error::Usage("serve is not built yet".into()))
}
