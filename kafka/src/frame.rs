//! Kafka's framing: a big-endian `int32` size, then that many bytes.
//! Pure: no I/O.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the size prefix.
pub const SIZE_BYTES: usize = 4;

/// A frame that cannot be read: the connection closes, as Kafka's
/// `InvalidReceiveException` does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("frame size {0} is negative")]
    Negative(i32),
    /// The size prefix is above `socket.request.max.bytes`.
    #[error("frame size {size} is above socket.request.max.bytes ({max})")]
    TooLarge {
        /// The size announced.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// Takes the next whole frame (without its size prefix) off the front of
/// `buf`; `Ok(None)` when more bytes are needed. A size above `max` is
/// refused before anything of the body is buffered. When a frame is
/// incomplete, `buf` is reserved up to its size so the next read can
/// finish it.
pub fn next_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < SIZE_BYTES {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    let total = SIZE_BYTES + size;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(SIZE_BYTES);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// (bytes buffered, max, frames expected, bytes left, error)
    type Case = (
        Vec<u8>,
        usize,
        Vec<&'static [u8]>,
        usize,
        Option<FrameError>,
    );

    #[test]
    fn frames_are_cut_at_their_size() {
        let two = [framed(b"abc"), framed(b"de")].concat();
        let cases: Vec<Case> = vec![
            (vec![], 100, vec![], 0, None),
            (vec![0, 0], 100, vec![], 2, None),
            (framed(b"abc")[..5].to_vec(), 100, vec![], 5, None),
            (framed(b"abc"), 100, vec![b"abc"], 0, None),
            (two.clone(), 100, vec![b"abc", b"de"], 0, None),
            (two[..9].to_vec(), 100, vec![b"abc"], 2, None),
            (framed(b""), 100, vec![b""], 0, None),
            (framed(b"abc"), 3, vec![b"abc"], 0, None),
            (
                framed(b"abcd"),
                3,
                vec![],
                8,
                Some(FrameError::TooLarge { size: 4, max: 3 }),
            ),
            (
                (-1i32).to_be_bytes().to_vec(),
                100,
                vec![],
                4,
                Some(FrameError::Negative(-1)),
            ),
            // The size alone is refused: nothing of the body is needed.
            (
                (104_857_601i32).to_be_bytes().to_vec(),
                104_857_600,
                vec![],
                4,
                Some(FrameError::TooLarge {
                    size: 104_857_601,
                    max: 104_857_600,
                }),
            ),
        ];
        for (bytes, max, want, left, want_err) in cases {
            let mut buf = BytesMut::from(&bytes[..]);
            let mut got = Vec::new();
            let err = loop {
                match next_frame(&mut buf, max) {
                    Ok(Some(f)) => got.push(f),
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            let got: Vec<&[u8]> = got.iter().map(|b| &b[..]).collect();
            assert_eq!(got, want, "{bytes:?}");
            assert_eq!(buf.len(), left, "{bytes:?}");
            assert_eq!(err, want_err, "{bytes:?}");
        }
    }
}
