//! Carries our own errors through apache-avro, which only accepts `io::Error` from a
//! reader or writer and wraps it in its own type.
//!
//! The adapters that feed apache-avro put the real error (an I/O failure, or bad framing
//! found before decoding) here and hand apache-avro a stand-in; the caller then reports
//! the real one, so a failing disk or network (retry) stays distinct from bad data (reject).

use super::WireError;
use std::io;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub(crate) struct ErrorSlot(Arc<Mutex<Option<WireError>>>);

impl ErrorSlot {
    /// Keeps `error` (the first one wins) and returns the stand-in for apache-avro.
    pub(crate) fn keep(&self, error: WireError) -> io::Error {
        let stand_in = io::Error::new(io::ErrorKind::InvalidData, error.to_string());
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(error);
        }
        stand_in
    }

    /// The error behind apache-avro's current failure, if it was one of ours.
    pub(crate) fn take(&self) -> Option<WireError> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}
