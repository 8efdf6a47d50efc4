//! Zigzag varints and the per-record layout inside a batch:
//!
//! ```text
//! length: varint            (bytes after this field)
//! attributes: i8            (unused, 0)
//! timestampDelta: varlong   (from baseTimestamp)
//! offsetDelta: varint       (from baseOffset)
//! keyLength: varint, key    (-1 = null)
//! valueLength: varint, value (-1 = null)
//! headerCount: varint
//!   headerKeyLength: varint, headerKey (UTF-8)
//!   headerValueLength: varint, headerValue (-1 = null)
//! ```

use bytes::{BufMut, Bytes};

use crate::error::{LogError, Result};

/// A record header (Kafka: `String` key, nullable bytes value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value, `None` for null.
    pub value: Option<Bytes>,
}

/// A decoded record with absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset.
    pub offset: i64,
    /// Absolute timestamp (the batch's append time for LogAppendTime).
    pub timestamp: i64,
    /// Key, `None` for null.
    pub key: Option<Bytes>,
    /// Value, `None` for null.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<Header>,
}

/// Append a zigzag varint (Kafka `varint`, at most 5 bytes).
pub fn put_varint(buf: &mut impl BufMut, value: i32) {
    put_unsigned(buf, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

/// Append a zigzag varlong (Kafka `varlong`, at most 10 bytes).
pub fn put_varlong(buf: &mut impl BufMut, value: i64) {
    put_unsigned(buf, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_unsigned(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Encoded size of a zigzag varint.
pub fn varint_len(value: i32) -> usize {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Unsigned LEB128 of at most `max_bytes` bytes at `*pos`, advancing it.
fn read_unsigned(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let Some(&byte) = buf.get(*pos) else {
            return Err(LogError::corrupt("truncated varint"));
        };
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(LogError::corrupt("varint too long"))
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32> {
    let raw = read_unsigned(buf, pos, 5)?;
    if raw > u64::from(u32::MAX) {
        return Err(LogError::corrupt("varint overflows i32"));
    }
    let raw = raw as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64> {
    let raw = read_unsigned(buf, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn read_i8(buf: &[u8], pos: &mut usize) -> Result<i8> {
    let Some(&byte) = buf.get(*pos) else {
        return Err(LogError::corrupt("truncated record attributes"));
    };
    *pos += 1;
    Ok(byte as i8)
}

/// A cursor over a record section that never reads out of bounds.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn varint(&mut self) -> Result<i32> {
        read_varint(&self.buf, &mut self.pos)
    }

    pub(crate) fn varlong(&mut self) -> Result<i64> {
        read_varlong(&self.buf, &mut self.pos)
    }

    fn i8(&mut self) -> Result<i8> {
        read_i8(&self.buf, &mut self.pos)
    }

    fn take(&mut self, len: usize) -> Result<Bytes> {
        if len > self.remaining() {
            return Err(LogError::corrupt("field extends past end of record"));
        }
        let out = self.buf.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(out)
    }

    fn nullable_bytes(&mut self) -> Result<Option<Bytes>> {
        match self.varint()? {
            -1 => Ok(None),
            len if len < 0 => Err(LogError::corrupt(format!("negative field length {len}"))),
            len => self.take(len as usize).map(Some),
        }
    }
}

/// Encode one record into `out`: its length prefix, then the body. The
/// body's length is computed first so the fields are written once, straight
/// into `out` (this is on the producer's per-record path).
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) {
    let body_len = 1
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_len(key)
        + nullable_len(value)
        + varint_len(len_i32(headers.len()))
        + headers
            .iter()
            .map(|h| nullable_len(Some(h.key.as_bytes())) + nullable_len(h.value.as_deref()))
            .sum::<usize>();
    let body_len_i32 = len_i32(body_len);
    out.reserve(varint_len(body_len_i32) + body_len);
    put_varint(out, body_len_i32);
    out.put_i8(0);
    put_varlong(out, timestamp_delta);
    put_varint(out, offset_delta);
    put_nullable(out, key);
    put_nullable(out, value);
    put_varint(out, len_i32(headers.len()));
    for header in headers {
        put_nullable(out, Some(header.key.as_bytes()));
        put_nullable(out, header.value.as_deref());
    }
}

/// Encoded size of a zigzag varlong.
fn varlong_len(value: i64) -> usize {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Encoded size of a nullable length-prefixed field.
fn nullable_len(field: Option<&[u8]>) -> usize {
    match field {
        None => varint_len(-1),
        Some(bytes) => varint_len(len_i32(bytes.len())) + bytes.len(),
    }
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("record fields are smaller than 2 GiB")
}

fn put_nullable(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => put_varint(buf, -1),
        Some(bytes) => {
            put_varint(buf, len_i32(bytes.len()));
            buf.extend_from_slice(bytes);
        }
    }
}

/// Decode `count` records from an uncompressed record section.
pub(crate) fn decode_records(
    body: Bytes,
    count: i32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<Vec<Record>> {
    let count = usize::try_from(count)
        .map_err(|_| LogError::corrupt(format!("negative record count {count}")))?;
    let mut reader = Reader::new(body);
    // Each record takes at least 7 bytes, so a lying count cannot make us
    // allocate more than the input justifies.
    let mut records = Vec::with_capacity(count.min(reader.remaining() / 7 + 1));
    for _ in 0..count {
        let len = reader.varint()?;
        if len < 0 {
            return Err(LogError::corrupt(format!("negative record length {len}")));
        }
        let mut record = Reader::new(reader.take(len as usize)?);
        let _attributes = record.i8()?;
        let timestamp_delta = record.varlong()?;
        let offset_delta = record.varint()?;
        let key = record.nullable_bytes()?;
        let value = record.nullable_bytes()?;
        let header_count = record.varint()?;
        if header_count < 0 {
            return Err(LogError::corrupt(format!(
                "negative header count {header_count}"
            )));
        }
        let mut headers = Vec::with_capacity((header_count as usize).min(record.remaining() / 2));
        for _ in 0..header_count {
            let key = record
                .nullable_bytes()?
                .ok_or_else(|| LogError::corrupt("null header key"))?;
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| LogError::corrupt("header key is not utf-8"))?;
            let value = record.nullable_bytes()?;
            headers.push(Header { key, value });
        }
        if record.remaining() != 0 {
            return Err(LogError::corrupt("trailing bytes in record"));
        }
        records.push(Record {
            offset: base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: log_append_time.unwrap_or(base_timestamp.wrapping_add(timestamp_delta)),
            key,
            value,
            headers,
        });
    }
    if reader.remaining() != 0 {
        return Err(LogError::corrupt(format!(
            "{} trailing bytes after {count} records",
            reader.remaining()
        )));
    }
    Ok(records)
}

/// A borrowing cursor for [`check_records`]: walks fields without
/// creating `Bytes` or `Record`s.
struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Walk<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return Err(LogError::corrupt("field extends past end of record"));
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>> {
        match read_varint(self.buf, &mut self.pos)? {
            -1 => Ok(None),
            len if len < 0 => Err(LogError::corrupt(format!("negative field length {len}"))),
            len => self.take(len as usize).map(Some),
        }
    }
}

/// Check that an uncompressed record section holds exactly `count`
/// well-formed records, the i-th with offset delta i, without decoding them
/// into [`Record`]s: lengths within bounds, varints that end, header keys
/// present and UTF-8, no trailing bytes in a record or after the last one.
/// Whatever passes, [`decode_records`] decodes. This is what a leader checks
/// before acknowledging a batch (Kafka's `LogValidator`), so that no consumer
/// can be handed a batch it cannot read.
///
/// Returns the index of the first record without a key, if any (a
/// compacted log refuses those).
pub(crate) fn check_records(body: &[u8], count: i32) -> Result<Option<i32>> {
    let mut walk = Walk { buf: body, pos: 0 };
    let mut keyless = None;
    for i in 0..count {
        let len = read_varint(walk.buf, &mut walk.pos)?;
        let len = usize::try_from(len)
            .map_err(|_| LogError::corrupt(format!("negative record length {len}")))?;
        let at = walk.pos;
        let mut record = Walk {
            buf: walk.take(len).map_err(|_| {
                LogError::corrupt(format!(
                    "record {i} at byte {at} claims {len} bytes, {} remain",
                    walk.remaining()
                ))
            })?,
            pos: 0,
        };
        read_i8(record.buf, &mut record.pos)?; // attributes
        read_varlong(record.buf, &mut record.pos)?; // timestamp delta
        let offset_delta = read_varint(record.buf, &mut record.pos)?;
        if offset_delta != i {
            return Err(LogError::corrupt(format!(
                "record {i} has offset delta {offset_delta}"
            )));
        }
        if record.nullable_bytes()?.is_none() && keyless.is_none() {
            keyless = Some(i);
        }
        record.nullable_bytes()?; // value
        let header_count = read_varint(record.buf, &mut record.pos)?;
        if header_count < 0 {
            return Err(LogError::corrupt(format!(
                "negative header count {header_count}"
            )));
        }
        for _ in 0..header_count {
            let key = record
                .nullable_bytes()?
                .ok_or_else(|| LogError::corrupt("null header key"))?;
            std::str::from_utf8(key).map_err(|_| LogError::corrupt("header key is not utf-8"))?;
            record.nullable_bytes()?; // value
        }
        if record.remaining() != 0 {
            return Err(LogError::corrupt(format!(
                "{} trailing bytes in record {i}",
                record.remaining()
            )));
        }
    }
    if walk.remaining() != 0 {
        return Err(LogError::corrupt(format!(
            "{} trailing bytes after {count} records",
            walk.remaining()
        )));
    }
    Ok(keyless)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [0, 1, -1, 63, -64, 64, 300, -300, i32::MAX, i32::MIN] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), varint_len(value), "{value}");
            let mut reader = Reader::new(Bytes::from(buf));
            assert_eq!(reader.varint().expect("decodes"), value);
            assert_eq!(reader.remaining(), 0);
        }
        for value in [0, -1, i64::from(i32::MAX) + 1, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, value);
            let mut reader = Reader::new(Bytes::from(buf));
            assert_eq!(reader.varlong().expect("decodes"), value);
        }
    }

    /// The straightforward encoding (body into a scratch buffer, then its
    /// length and the body), which `encode_record` must reproduce.
    fn encode_record_reference(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        body.put_i8(0);
        put_varlong(&mut body, timestamp_delta);
        put_varint(&mut body, offset_delta);
        put_nullable(&mut body, key);
        put_nullable(&mut body, value);
        put_varint(&mut body, len_i32(headers.len()));
        for header in headers {
            put_nullable(&mut body, Some(header.key.as_bytes()));
            put_nullable(&mut body, header.value.as_deref());
        }
        let mut out = Vec::new();
        put_varint(&mut out, len_i32(body.len()));
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn encode_record_writes_the_reference_encoding() {
        let big = vec![7u8; 70_000];
        let headers = [
            Header {
                key: "h".into(),
                value: Some(Bytes::from_static(b"v")),
            },
            Header {
                key: "none".into(),
                value: None,
            },
        ];
        // Sizes around the varint boundaries (63/64 and 8191/8192 bytes of
        // body length), negative and large deltas, null fields.
        /// timestamp delta, offset delta, key, value, headers
        type Case<'a> = (i64, i32, Option<&'a [u8]>, Option<&'a [u8]>, &'a [Header]);
        let cases: [Case<'_>; 8] = [
            (0, 0, None, None, &[]),
            (-1, 1, Some(b""), Some(b""), &[]),
            (1, 63, None, Some(&big[..50]), &[]),
            (150, 64, Some(b"key"), Some(&big[..57]), &headers),
            (
                i64::MAX,
                i32::MAX,
                Some(&big[..10]),
                Some(&big[..8180]),
                &[],
            ),
            (i64::MIN, i32::MIN, None, Some(&big[..8192]), &headers),
            (1 << 40, 300, Some(&big[..300]), Some(&big), &headers),
            (-(1 << 40), 5, Some(&big[..1]), None, &headers),
        ];
        for (ts, od, key, value, hs) in cases {
            let mut out = vec![0xAB];
            encode_record(&mut out, ts, od, key, value, hs);
            let expected = encode_record_reference(ts, od, key, value, hs);
            assert_eq!(&out[1..], &expected[..], "ts {ts} delta {od}");
        }
    }

    #[test]
    fn zigzag_matches_kafka_encoding() {
        // Kafka: 0 -> 00, -1 -> 01, 1 -> 02, 150 -> ac 02.
        let cases: [(i32, &[u8]); 4] = [(0, &[0]), (-1, &[1]), (1, &[2]), (150, &[0xac, 0x02])];
        for (value, expected) in cases {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf, expected, "{value}");
        }
    }

    #[test]
    fn malformed_varints_are_errors() {
        let too_long = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(Reader::new(too_long).varint().is_err());
        let truncated = Bytes::from_static(&[0x80]);
        assert!(Reader::new(truncated).varint().is_err());
    }

    #[test]
    fn record_with_null_key_and_headers_round_trips() {
        let headers = vec![
            Header {
                key: "h".into(),
                value: Some(Bytes::from_static(b"v")),
            },
            Header {
                key: "n".into(),
                value: None,
            },
        ];
        let mut out = Vec::new();
        encode_record(&mut out, 5, 0, None, Some(b"value"), &headers);
        encode_record(&mut out, -3, 1, Some(b"k"), None, &[]);
        let records = decode_records(Bytes::from(out), 2, 100, 1_000, None).expect("decodes");
        assert_eq!(records[0].offset, 100);
        assert_eq!(records[0].timestamp, 1_005);
        assert_eq!(records[0].key, None);
        assert_eq!(records[0].value.as_deref(), Some(&b"value"[..]));
        assert_eq!(records[0].headers, headers);
        assert_eq!(records[1].offset, 101);
        assert_eq!(records[1].timestamp, 997);
        assert_eq!(records[1].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(records[1].value, None);
    }

    #[test]
    fn record_count_mismatch_is_corrupt() {
        let mut out = Vec::new();
        encode_record(&mut out, 0, 0, None, Some(b"v"), &[]);
        let body = Bytes::from(out);
        assert!(decode_records(body.clone(), 2, 0, 0, None).is_err());
        assert!(decode_records(body, 0, 0, 0, None).is_err());
    }

    /// A record from its body bytes: `length` varint, then `body`.
    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, len_i32(body.len()));
        out.extend_from_slice(body);
        out
    }

    /// attributes, timestamp delta 0, offset delta `delta`, then `rest`.
    fn body(delta: i32, rest: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0];
        put_varint(&mut out, delta);
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn record_walk_accepts_exactly_what_decoding_accepts_with_dense_deltas() {
        let headers = [Header {
            key: "h".into(),
            value: None,
        }];
        let mut two = Vec::new();
        encode_record(&mut two, 0, 0, None, Some(b"v"), &headers);
        encode_record(&mut two, 7, 1, Some(b"k"), None, &[]);
        let mut gap = Vec::new();
        encode_record(&mut gap, 0, 0, None, None, &[]);
        encode_record(&mut gap, 0, 2, None, None, &[]);
        // key -1 (null), value -1, one header: key length 1 "\xff", value -1
        let bad_utf8 = framed(&body(0, &[1, 1, 2, 2, 0xff, 1]));
        let null_header_key = framed(&body(0, &[1, 1, 2, 1, 1]));
        let negative_headers = framed(&body(0, &[1, 1, 1]));
        let key_past_record = framed(&body(0, &[20, b'k']));
        let mut trailing_in_record = body(0, &[1, 1, 0]);
        trailing_in_record.push(0);
        let trailing_in_record = framed(&trailing_in_record);
        let mut negative_length = Vec::new();
        put_varint(&mut negative_length, -2);
        let mut length_past_end = Vec::new();
        put_varint(&mut length_past_end, 50);
        length_past_end.extend_from_slice(&[0, 0, 0]);
        let cut_varint = vec![0x80];

        /// body, count, expected error text (None: valid)
        type Case<'a> = (&'a str, &'a [u8], i32, Option<&'a str>);
        let cases: [Case<'_>; 13] = [
            ("two records", &two, 2, None),
            ("count above the records", &two, 3, Some("truncated varint")),
            (
                "count below the records",
                &two,
                1,
                Some("trailing bytes after 1"),
            ),
            ("empty section", &[], 1, Some("truncated varint")),
            (
                "offset delta gap",
                &gap,
                2,
                Some("record 1 has offset delta 2"),
            ),
            ("header key not utf-8", &bad_utf8, 1, Some("not utf-8")),
            (
                "null header key",
                &null_header_key,
                1,
                Some("null header key"),
            ),
            (
                "negative header count",
                &negative_headers,
                1,
                Some("negative header count"),
            ),
            (
                "key past the record",
                &key_past_record,
                1,
                Some("past end of record"),
            ),
            (
                "trailing byte in a record",
                &trailing_in_record,
                1,
                Some("trailing bytes in record 0"),
            ),
            (
                "negative record length",
                &negative_length,
                1,
                Some("negative record length"),
            ),
            (
                "record past the section",
                &length_past_end,
                1,
                Some("claims 50 bytes, 3 remain"),
            ),
            ("cut varint", &cut_varint, 1, Some("truncated varint")),
        ];
        for (name, section, count, want) in cases {
            let walked = check_records(section, count);
            let decoded = decode_records(Bytes::copy_from_slice(section), count, 0, 0, None);
            match want {
                None => {
                    walked.unwrap_or_else(|e| panic!("{name}: {e}"));
                    decoded.unwrap_or_else(|e| panic!("{name}: decode: {e}"));
                }
                Some(text) => {
                    let err = walked.expect_err(name).to_string();
                    assert!(err.contains(text), "{name}: {err}");
                    // Decoding refuses the same sections, except a gap in
                    // the offset deltas, which only a leader refuses.
                    if !name.contains("delta") {
                        assert!(decoded.is_err(), "{name}: decoded");
                    }
                }
            }
        }
    }
}
