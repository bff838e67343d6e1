//! `silta demo`.

use std::path::PathBuf;

use crate::Failure;

pub(crate) async fn run(_keep: Option<PathBuf>) -> Result<(), Failure> {
    Err(Failure::failed("not yet"))
}
