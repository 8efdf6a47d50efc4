//! Kafka's primitive encodings for the `__consumer_offsets` records:
//! big-endian integers, `int16`-length strings (non-flexible versions) and
//! the flexible versions' compact strings and arrays (unsigned varint
//! length + 1), UUIDs and tagged-field sections.

use uuid::Uuid;

use crate::error::{Result, bail};

/// Appends Kafka primitives to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn i8(&mut self, v: i8) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    /// A non-flexible `string`: `int16` length, then UTF-8 bytes. Callers
    /// keep strings under 32 KiB (group ids, topic names and metadata are
    /// bounded before they reach a record).
    pub(crate) fn string(&mut self, s: &str) {
        let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
        self.i16(len);
        self.buf.extend_from_slice(&s.as_bytes()[..len as usize]);
    }
    /// A flexible (compact) nullable string.
    pub(crate) fn compact_nullable_string(&mut self, s: Option<&str>) {
        match s {
            None => self.uvarint(0),
            Some(s) => self.compact_string(s),
        }
    }
    pub(crate) fn compact_string(&mut self, s: &str) {
        self.uvarint(s.len() as u64 + 1);
        self.buf.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn compact_array_len(&mut self, n: usize) {
        self.uvarint(n as u64 + 1);
    }
    pub(crate) fn uuid(&mut self, id: Uuid) {
        self.buf.extend_from_slice(id.as_bytes());
    }
    /// A tagged-field section with the given `(tag, payload)` pairs, in
    /// increasing tag order.
    pub(crate) fn tagged_fields(&mut self, fields: &[(u32, Vec<u8>)]) {
        self.uvarint(fields.len() as u64);
        for (tag, data) in fields {
            self.uvarint(u64::from(*tag));
            self.uvarint(data.len() as u64);
            self.buf.extend_from_slice(data);
        }
    }
}

/// Reads Kafka primitives from a byte slice; every read is bounds-checked
/// and fails with `CORRUPT_MESSAGE`.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            bail!(
                CorruptMessage,
                "{} truncated: needs {n} more bytes, has {}",
                self.what,
                self.buf.len()
            );
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn i8(&mut self) -> Result<i8> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    pub(crate) fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub(crate) fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    pub(crate) fn uvarint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.array::<1>()?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!(CorruptMessage, "{}: varint longer than 10 bytes", self.what)
    }
    fn utf8(&mut self, len: usize) -> Result<String> {
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => bail!(CorruptMessage, "{}: string is not utf-8", self.what),
        }
    }
    pub(crate) fn string(&mut self) -> Result<String> {
        let len = self.i16()?;
        if len < 0 {
            bail!(
                CorruptMessage,
                "{}: null where a string is required",
                self.what
            );
        }
        self.utf8(len as usize)
    }
    pub(crate) fn compact_nullable_string(&mut self) -> Result<Option<String>> {
        match self.uvarint()? {
            0 => Ok(None),
            n => Ok(Some(self.utf8(self.len_of(n - 1)?)?)),
        }
    }
    pub(crate) fn compact_string(&mut self) -> Result<String> {
        match self.compact_nullable_string()? {
            Some(s) => Ok(s),
            None => bail!(
                CorruptMessage,
                "{}: null where a string is required",
                self.what
            ),
        }
    }
    /// A compact array's element count (a null array reads as empty).
    pub(crate) fn compact_array_len(&mut self) -> Result<usize> {
        match self.uvarint()? {
            0 => Ok(0),
            n => self.len_of(n - 1),
        }
    }
    fn len_of(&self, n: u64) -> Result<usize> {
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => bail!(
                CorruptMessage,
                "{}: length {n} exceeds the {} bytes left",
                self.what,
                self.buf.len()
            ),
        }
    }
    pub(crate) fn uuid(&mut self) -> Result<Uuid> {
        Ok(Uuid::from_bytes(self.array()?))
    }
    /// A tagged-field section: returns the fields as `(tag, payload)`;
    /// callers pick the tags they know and ignore the rest, as Kafka does.
    pub(crate) fn tagged_fields(&mut self) -> Result<Vec<(u32, &'a [u8])>> {
        let n = self.uvarint()?;
        let n = self.len_of(n)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let tag = self.uvarint()?;
            let Ok(tag) = u32::try_from(tag) else {
                bail!(CorruptMessage, "{}: tag {tag} out of range", self.what);
            };
            let len = self.uvarint()?;
            let len = self.len_of(len)?;
            out.push((tag, self.take(len)?));
        }
        Ok(out)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn what(&self) -> &'static str {
        self.what
    }
}
