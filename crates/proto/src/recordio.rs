//! RecordIO framing of streaming responses (mesos-http-api.md section 7): ASCII decimal length, `\n`,
//! then exactly that many bytes of one record, immediately followed by the next length.
//!
//! The decoder is incremental over a byte buffer and reports "incomplete" rather than reading a
//! socket, so it can be fed arbitrary chunk boundaries.

use bytes::{Buf, BytesMut};

/// Largest record accepted by the decoder; a longer length prefix is a protocol error, not an
/// allocation.
pub const RECORDIO_FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Longest length prefix: enough digits for `RECORDIO_FRAME_BYTES_MAX`.
const LENGTH_DIGITS_MAX: usize = 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordIoError {
    #[error("record length prefix is not a decimal number: {0:?}")]
    BadLength(String),
    #[error("record of {0} bytes exceeds the limit of {RECORDIO_FRAME_BYTES_MAX}")]
    TooLarge(usize),
    #[error("stream ended inside a record ({0} bytes left over)")]
    Truncated(usize),
}

/// Frames one record.
pub fn encode(record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + 12);
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(record);
    out
}

#[derive(Default)]
pub struct Decoder {
    buffer: BytesMut,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete record, `Ok(None)` if more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, RecordIoError> {
        let Some(newline) = self.buffer.iter().position(|b| *b == b'\n') else {
            if self.buffer.len() > LENGTH_DIGITS_MAX {
                return Err(RecordIoError::BadLength(
                    String::from_utf8_lossy(&self.buffer[..LENGTH_DIGITS_MAX]).into_owned(),
                ));
            }
            return Ok(None);
        };
        let prefix = &self.buffer[..newline];
        let text = std::str::from_utf8(prefix)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                RecordIoError::BadLength(String::from_utf8_lossy(prefix).into_owned())
            })?;
        let length: usize = text
            .parse()
            .map_err(|_| RecordIoError::BadLength(text.to_string()))?;
        if length > RECORDIO_FRAME_BYTES_MAX {
            return Err(RecordIoError::TooLarge(length));
        }
        if self.buffer.len() < newline + 1 + length {
            return Ok(None);
        }
        self.buffer.advance(newline + 1);
        Ok(Some(self.buffer.split_to(length).to_vec()))
    }

    /// Call when the stream ends: an error if a partial record is left.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(RecordIoError::Truncated(self.buffer.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_across_arbitrary_chunks() {
        let mut wire = encode(br#"{"type":"HEARTBEAT"}"#);
        wire.extend(encode(b"{}"));
        assert_eq!(&wire[..3], b"20\n");
        for split in 0..wire.len() {
            let mut d = Decoder::new();
            d.feed(&wire[..split]);
            let mut got = Vec::new();
            while let Some(r) = d.next_record().unwrap() {
                got.push(r);
            }
            d.feed(&wire[split..]);
            while let Some(r) = d.next_record().unwrap() {
                got.push(r);
            }
            assert_eq!(
                got,
                vec![br#"{"type":"HEARTBEAT"}"#.to_vec(), b"{}".to_vec()]
            );
            d.finish().unwrap();
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut d = Decoder::new();
        d.feed(b"abc\n{}");
        assert!(matches!(d.next_record(), Err(RecordIoError::BadLength(_))));
        let mut d = Decoder::new();
        d.feed(b"99999999999\n");
        assert!(matches!(d.next_record(), Err(RecordIoError::TooLarge(_))));
        let mut d = Decoder::new();
        d.feed(b"10\n{}");
        assert_eq!(d.next_record(), Ok(None));
        assert_eq!(d.finish(), Err(RecordIoError::Truncated(5)));
    }
}
