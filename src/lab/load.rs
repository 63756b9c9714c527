//! `sockmap load`: the echo load client. (Being written.)

use std::io::Write;

use super::LoadConfig;
use crate::error::{Error, Result};

/// Run the load; Ok(true) when every client succeeded.
pub fn run(_cfg: &LoadConfig, _out: &mut dyn Write) -> Result<bool> {
    Err(Error::Usage("load is not built yet".into()))
}
