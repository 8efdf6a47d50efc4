//! Per-batch compression codecs (attribute bits 0..=2, Kafka's ids).
//!
//! Stream formats: gzip (RFC 1952), snappy, LZ4 frame format, zstd frame
//! format. Decompression is bounded by [`MAX_DECOMPRESSED_BYTES`] so a
//! malicious batch cannot exhaust memory.
//!
//! Snappy comes in two framings in Kafka batches, and both are read, as
//! librdkafka and the Java client do:
//! - the **raw block** format (librdkafka, Strom's own writers);
//! - the **xerial** framing of snappy-java's `SnappyOutputStream` (the Java
//!   client, kafka-python): the 8 magic bytes `82 'SNAPPY' 00`, two
//!   big-endian i32s (version and compatible version, both 1 in practice and
//!   ignored, as librdkafka and kafka-python do: some writers store them
//!   little-endian), then blocks of `[i32 big-endian length][raw block]`.
//!   This is not snappy's official framing format (`snap::read`).
//!
//! The two cannot be confused: a raw block starting with the xerial magic
//! would declare 10626 bytes and open with a back-reference (tag byte `'N'`)
//! before any literal, which no valid block does. Strom writes raw blocks.

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

    /// Decompress a record section; never panics, output bounded by
    /// [`MAX_DECOMPRESSED_BYTES`]. Snappy input may be a raw block or
    /// xerial-framed (see the module docs).
    pub fn decompress(self, input: Bytes) -> Result<Bytes> {
        self.decompress_bounded(input, MAX_DECOMPRESSED_BYTES)
    }

    /// [`decompress`](Self::decompress) with an explicit output limit.
    pub(crate) fn decompress_bounded(self, input: Bytes, limit: usize) -> Result<Bytes> {
        let bad = |codec: &str, e: &dyn std::fmt::Display| {
            LogError::corrupt(format!("{codec} decompression failed: {e}"))
        };
        let out = match self {
            Compression::None => return Ok(input),
            Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(&input[..]), limit)
                .map_err(|e| bad("gzip", &e))?,
            Compression::Snappy => {
                snappy_decompress(&input, limit).map_err(|e| bad("snappy", &e))?
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

/// The first 8 bytes of a xerial (snappy-java `SnappyOutputStream`) stream.
pub(crate) const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic, version (i32), compatible version (i32).
const XERIAL_HEADER_LEN: usize = 16;

/// Why a snappy section could not be decompressed.
#[derive(Debug)]
enum SnappyError {
    Codec(snap::Error),
    TooLarge {
        limit: usize,
    },
    TruncatedHeader,
    TruncatedBlockLength {
        at: usize,
    },
    BadBlockLength {
        at: usize,
        len: i32,
        remaining: usize,
    },
}

impl std::fmt::Display for SnappyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnappyError::Codec(e) => write!(f, "{e}"),
            SnappyError::TooLarge { limit } => write!(f, "output exceeds {limit} bytes"),
            SnappyError::TruncatedHeader => write!(f, "truncated xerial header"),
            SnappyError::TruncatedBlockLength { at } => {
                write!(f, "truncated xerial block length at byte {at}")
            }
            SnappyError::BadBlockLength { at, len, remaining } => write!(
                f,
                "xerial block at byte {at} claims {len} bytes, {remaining} remain"
            ),
        }
    }
}

/// Raw or xerial-framed snappy, at most `limit` bytes of output.
fn snappy_decompress(input: &[u8], limit: usize) -> std::result::Result<Vec<u8>, SnappyError> {
    let mut out = Vec::new();
    let mut decoder = snap::raw::Decoder::new();
    if !input.starts_with(&XERIAL_MAGIC) {
        snappy_block(&mut decoder, input, limit, &mut out)?;
        return Ok(out);
    }
    if input.len() < XERIAL_HEADER_LEN {
        return Err(SnappyError::TruncatedHeader);
    }
    let mut pos = XERIAL_HEADER_LEN;
    while pos < input.len() {
        let Some(len_bytes) = input.get(pos..pos + 4) else {
            return Err(SnappyError::TruncatedBlockLength { at: pos });
        };
        let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let remaining = input.len() - pos - 4;
        let block = usize::try_from(len)
            .ok()
            .filter(|&n| n > 0 && n <= remaining)
            .map(|n| &input[pos + 4..pos + 4 + n])
            .ok_or(SnappyError::BadBlockLength {
                at: pos,
                len,
                remaining,
            })?;
        snappy_block(&mut decoder, block, limit, &mut out)?;
        pos += 4 + block.len();
    }
    Ok(out)
}

/// Append one raw snappy block's output to `out`, keeping `out` within
/// `limit` bytes.
fn snappy_block(
    decoder: &mut snap::raw::Decoder,
    block: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> std::result::Result<(), SnappyError> {
    let len = snap::raw::decompress_len(block).map_err(SnappyError::Codec)?;
    let start = out.len();
    if len > limit - start {
        return Err(SnappyError::TooLarge { limit });
    }
    out.resize(start + len, 0);
    let written = decoder
        .decompress(block, &mut out[start..])
        .map_err(SnappyError::Codec)?;
    out.truncate(start + written);
    Ok(())
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

    /// A xerial stream (snappy-java's `SnappyOutputStream`) of `input` cut
    /// into raw blocks of `block` bytes, with version fields `version`.
    fn xerial(input: &[u8], block: usize, version: [u8; 8]) -> Vec<u8> {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend_from_slice(&version);
        for chunk in input.chunks(block) {
            let compressed = snap::raw::Encoder::new()
                .compress_vec(chunk)
                .expect("small input");
            out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
            out.extend_from_slice(&compressed);
        }
        out
    }

    const BIG_ENDIAN_V1: [u8; 8] = [0, 0, 0, 1, 0, 0, 0, 1];

    #[test]
    fn xerial_framed_snappy_decompresses_to_the_input() {
        let input: Vec<u8> = (0..100_000u32).map(|i| (i % 97) as u8).collect();
        let little_endian_v1 = [1, 0, 0, 0, 1, 0, 0, 0];
        for (block, version) in [
            (32 * 1024, BIG_ENDIAN_V1), // snappy-java's and kafka-python's default
            (input.len(), BIG_ENDIAN_V1),
            (1000, little_endian_v1),
        ] {
            let framed = xerial(&input, block, version);
            let output = Compression::Snappy
                .decompress(Bytes::from(framed))
                .expect("decompresses");
            assert_eq!(&output[..], &input[..], "blocks of {block}");
        }
    }

    #[test]
    fn malformed_xerial_streams_are_errors() {
        let valid = xerial(b"hello hello hello", 8, BIG_ENDIAN_V1);
        let header = &valid[..XERIAL_HEADER_LEN];
        let with_block = |len: i32, body: &[u8]| {
            let mut out = header.to_vec();
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(body);
            out
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("magic only", XERIAL_MAGIC.to_vec()),
            ("header cut in the version", valid[..12].to_vec()),
            ("block length cut", [header, &[0, 0]].concat()),
            ("negative block length", with_block(-1, b"abc")),
            ("empty block", with_block(0, b"")),
            ("block past the end", with_block(100, b"abc")),
            ("garbage block", with_block(3, &[0xff, 0xff, 0xff])),
            ("last block cut", valid[..valid.len() - 1].to_vec()),
        ];
        for (name, input) in cases {
            let err = Compression::Snappy
                .decompress(Bytes::from(input))
                .expect_err(name);
            assert!(
                err.to_string().contains("snappy decompression failed"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn xerial_header_without_blocks_is_empty() {
        let header = xerial(b"", 8, BIG_ENDIAN_V1);
        let output = Compression::Snappy
            .decompress(Bytes::from(header))
            .expect("no blocks");
        assert!(output.is_empty());
    }

    #[test]
    fn snappy_output_over_the_limit_is_refused_in_both_framings() {
        let input = vec![7u8; 10_000];
        let raw = Compression::Snappy.compress(&input);
        let framed = xerial(&input, 4096, BIG_ENDIAN_V1);
        for (name, compressed) in [("raw", raw), ("xerial", framed)] {
            let compressed = Bytes::from(compressed);
            assert!(
                Compression::Snappy
                    .decompress_bounded(compressed.clone(), 9_999)
                    .is_err(),
                "{name}"
            );
            let output = Compression::Snappy
                .decompress_bounded(compressed, 10_000)
                .expect(name);
            assert_eq!(output.len(), 10_000, "{name}");
        }
    }
}
