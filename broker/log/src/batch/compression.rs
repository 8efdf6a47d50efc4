//! Per-batch compression codecs (attribute bits 0..=2, Kafka's ids).
//!
//! Stream formats: gzip (RFC 1952), snappy raw block format (Kafka's Java
//! client uses xerial framing; Strom does not speak the Kafka wire protocol,
//! so the simpler raw format is used), LZ4 frame format, zstd frame format.
//! Decompression is bounded by [`MAX_DECOMPRESSED_BYTES`] so a malicious
//! batch cannot exhaust memory.

use std::io::{Read, Write};

use bytes::Bytes;

use crate::error::{LogError, Result};

/// Upper bound on a batch's decompressed record section.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// Compression codec of a batch's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Id 0.
    #[default]
    None,
    /// Id 1.
    Gzip,
    /// Id 2.
    Snappy,
    /// Id 3.
    Lz4,
    /// Id 4.
    Zstd,
}

impl Compression {
    /// All codecs, for tests and benchmarks.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Kafka's codec id.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Codec for an id, `CorruptMessage` for unknown ids.
    pub fn from_id(id: i16) -> Result<Self> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(LogError::corrupt(format!(
                "unknown compression codec {other}"
            ))),
        }
    }

    /// Compress a record section.
    pub fn compress(self, input: &[u8]) -> Vec<u8> {
        const VEC_WRITE: &str = "writing to a Vec cannot fail";
        match self {
            Compression::None => input.to_vec(),
            Compression::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(input.len() / 2),
                    flate2::Compression::fast(),
                );
                encoder.write_all(input).expect(VEC_WRITE);
                encoder.finish().expect(VEC_WRITE)
            }
            Compression::Snappy => snap::raw::Encoder::new()
                .compress_vec(input)
                .expect("input is below snappy's 4 GiB limit"),
            Compression::Lz4 => {
                let mut encoder =
                    lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(input.len() / 2));
                encoder.write_all(input).expect(VEC_WRITE);
                encoder.finish().expect(VEC_WRITE)
            }
            Compression::Zstd => zstd::bulk::compress(input, 3).expect(VEC_WRITE),
        }
    }

    /// Decompress a record section; never panics, bounded output.
    pub fn decompress(self, input: Bytes) -> Result<Bytes> {
        let limit = MAX_DECOMPRESSED_BYTES;
        let bad = |codec: &str, e: &dyn std::fmt::Display| {
            LogError::corrupt(format!("{codec} decompression failed: {e}"))
        };
        let out = match self {
            Compression::None => return Ok(input),
            Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(&input[..]), limit)
                .map_err(|e| bad("gzip", &e))?,
            Compression::Snappy => {
                let len = snap::raw::decompress_len(&input).map_err(|e| bad("snappy", &e))?;
                if len > limit {
                    return Err(LogError::corrupt(format!(
                        "snappy section claims {len} bytes, limit is {limit}"
                    )));
                }
                snap::raw::Decoder::new()
                    .decompress_vec(&input)
                    .map_err(|e| bad("snappy", &e))?
            }
            Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(&input[..]), limit)
                .map_err(|e| bad("lz4", &e))?,
            Compression::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(&input[..])
                    .map_err(|e| bad("zstd", &e))?;
                read_bounded(decoder, limit).map_err(|e| bad("zstd", &e))?
            }
        };
        Ok(Bytes::from(out))
    }
}

fn read_bounded(reader: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::other(format!(
            "output exceeds {limit} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let input: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in Compression::ALL {
            let compressed = codec.compress(&input);
            let output = codec
                .decompress(Bytes::from(compressed))
                .expect("decompresses");
            assert_eq!(&output[..], &input[..], "{codec:?}");
            assert_eq!(Compression::from_id(codec.id()).expect("known id"), codec);
        }
    }

    #[test]
    fn garbage_input_is_an_error_not_a_panic() {
        let garbage = Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02]);
        for codec in Compression::ALL.into_iter().skip(1) {
            assert!(codec.decompress(garbage.clone()).is_err(), "{codec:?}");
        }
        assert!(Compression::from_id(5).is_err());
    }
}
