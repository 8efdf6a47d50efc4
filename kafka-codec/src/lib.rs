//! Kafka's primitive encodings, shared by the records of Strom's
//! coordinators (`__consumer_offsets` in `strom-group`,
//! `__transaction_state` in `strom-txn`) and, later, a Kafka wire-protocol
//! front end: big-endian integers, `int16`-length strings (non-flexible
//! versions), the flexible versions' compact strings and arrays (unsigned
//! varint length + 1), UUIDs and tagged-field sections.
//!
//! Pure: no I/O. Every read is bounds-checked and fails with a
//! [`CodecError`] naming what was being read; callers map it to their own
//! `CORRUPT_MESSAGE`.
#![warn(missing_docs)]

pub use uuid::Uuid;

/// A byte sequence that does not decode: truncated, a bad length, invalid
/// UTF-8, a null where a value is required.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CodecError {
    /// What was wrong, naming the structure being read.
    pub message: String,
}

/// Result of a read.
pub type Result<T, E = CodecError> = std::result::Result<T, E>;

macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(CodecError { message: format!($($arg)*) })
    };
}

/// Appends Kafka primitives to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// An `int8`.
    pub fn i8(&mut self, v: i8) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// A big-endian `int16`.
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// A big-endian `int32`.
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// A big-endian `int64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// An unsigned varint (7 bits a byte, low first).
    pub fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    /// A non-flexible `string`: `int16` length, then UTF-8 bytes. Callers
    /// keep strings under 32 KiB (group ids, topic names and metadata are
    /// bounded before they reach a record).
    pub fn string(&mut self, s: &str) {
        let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
        self.i16(len);
        self.buf.extend_from_slice(&s.as_bytes()[..len as usize]);
    }
    /// A non-flexible array's length (`int32`); `None` is a null array (-1).
    pub fn array_len(&mut self, n: Option<usize>) {
        match n {
            None => self.i32(-1),
            Some(n) => self.i32(i32::try_from(n).unwrap_or(i32::MAX)),
        }
    }
    /// A flexible (compact) nullable array's length: varint `n + 1`, 0 for null.
    pub fn compact_nullable_array_len(&mut self, n: Option<usize>) {
        match n {
            None => self.uvarint(0),
            Some(n) => self.compact_array_len(n),
        }
    }
    /// A flexible (compact) nullable string.
    pub fn compact_nullable_string(&mut self, s: Option<&str>) {
        match s {
            None => self.uvarint(0),
            Some(s) => self.compact_string(s),
        }
    }
    /// A flexible (compact) string: varint length + 1, then UTF-8 bytes.
    pub fn compact_string(&mut self, s: &str) {
        self.uvarint(s.len() as u64 + 1);
        self.buf.extend_from_slice(s.as_bytes());
    }
    /// A flexible (compact) array's length: varint `n + 1`.
    pub fn compact_array_len(&mut self, n: usize) {
        self.uvarint(n as u64 + 1);
    }
    /// A UUID: 16 bytes.
    pub fn uuid(&mut self, id: Uuid) {
        self.buf.extend_from_slice(id.as_bytes());
    }
    /// A tagged-field section with the given `(tag, payload)` pairs, in
    /// increasing tag order.
    pub fn tagged_fields(&mut self, fields: &[(u32, Vec<u8>)]) {
        self.uvarint(fields.len() as u64);
        for (tag, data) in fields {
            self.uvarint(u64::from(*tag));
            self.uvarint(data.len() as u64);
            self.buf.extend_from_slice(data);
        }
    }
}

/// Reads Kafka primitives from a byte slice; every read is bounds-checked
/// and fails with a [`CodecError`].
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader of `buf`; `what` names the structure in errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            bail!(
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
    /// An `int8`.
    pub fn i8(&mut self) -> Result<i8> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    /// A big-endian `int16`.
    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    /// A big-endian `int32`.
    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    /// A big-endian `int64`.
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    /// An unsigned varint of at most 10 bytes.
    pub fn uvarint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.array::<1>()?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("{}: varint longer than 10 bytes", self.what)
    }
    fn utf8(&mut self, len: usize) -> Result<String> {
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => bail!("{}: string is not utf-8", self.what),
        }
    }
    /// A non-flexible, non-null `string`.
    pub fn string(&mut self) -> Result<String> {
        let len = self.i16()?;
        if len < 0 {
            bail!("{}: null where a string is required", self.what);
        }
        self.utf8(len as usize)
    }
    /// A flexible (compact) nullable string.
    pub fn compact_nullable_string(&mut self) -> Result<Option<String>> {
        match self.uvarint()? {
            0 => Ok(None),
            n => Ok(Some(self.utf8(self.len_of(n - 1)?)?)),
        }
    }
    /// A flexible (compact) non-null string.
    pub fn compact_string(&mut self) -> Result<String> {
        match self.compact_nullable_string()? {
            Some(s) => Ok(s),
            None => bail!("{}: null where a string is required", self.what),
        }
    }
    /// A non-flexible array's element count (`int32`); `None` for a null
    /// array (-1). A count larger than the bytes left is refused (every
    /// element takes at least one byte).
    pub fn nullable_array_len(&mut self) -> Result<Option<usize>> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => bail!("{}: negative array length {n}", self.what),
            n => Ok(Some(self.len_of(n as u64)?)),
        }
    }
    /// A flexible (compact) nullable array's element count; `None` for null.
    pub fn compact_nullable_array_len(&mut self) -> Result<Option<usize>> {
        match self.uvarint()? {
            0 => Ok(None),
            n => Ok(Some(self.len_of(n - 1)?)),
        }
    }
    /// A compact array's element count (a null array reads as empty).
    pub fn compact_array_len(&mut self) -> Result<usize> {
        match self.uvarint()? {
            0 => Ok(0),
            n => self.len_of(n - 1),
        }
    }
    fn len_of(&self, n: u64) -> Result<usize> {
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => bail!(
                "{}: length {n} exceeds the {} bytes left",
                self.what,
                self.buf.len()
            ),
        }
    }
    /// A UUID: 16 bytes.
    pub fn uuid(&mut self) -> Result<Uuid> {
        Ok(Uuid::from_bytes(self.array()?))
    }
    /// A tagged-field section: returns the fields as `(tag, payload)`;
    /// callers pick the tags they know and ignore the rest, as Kafka does.
    pub fn tagged_fields(&mut self) -> Result<Vec<(u32, &'a [u8])>> {
        let n = self.uvarint()?;
        let n = self.len_of(n)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let tag = self.uvarint()?;
            let Ok(tag) = u32::try_from(tag) else {
                bail!("{}: tag {tag} out of range", self.what);
            };
            let len = self.uvarint()?;
            let len = self.len_of(len)?;
            out.push((tag, self.take(len)?));
        }
        Ok(out)
    }
    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// What the reader reads (for error messages).
    pub fn what(&self) -> &'static str {
        self.what
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = Writer::default();
        w.i8(-3);
        w.i16(-300);
        w.i32(70_000);
        w.i64(-1 << 40);
        w.uvarint(300);
        w.string("héllo");
        w.compact_string("x");
        w.compact_nullable_string(None);
        w.array_len(None);
        w.array_len(Some(0));
        w.compact_nullable_array_len(None);
        w.compact_array_len(0);
        w.uuid(Uuid::from_u128(7));
        w.tagged_fields(&[(1, vec![9]), (300, vec![])]);
        let mut r = Reader::new(&w.buf, "test");
        assert_eq!(r.i8().unwrap(), -3);
        assert_eq!(r.i16().unwrap(), -300);
        assert_eq!(r.i32().unwrap(), 70_000);
        assert_eq!(r.i64().unwrap(), -1 << 40);
        assert_eq!(r.uvarint().unwrap(), 300);
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.compact_string().unwrap(), "x");
        assert_eq!(r.compact_nullable_string().unwrap(), None);
        assert_eq!(r.nullable_array_len().unwrap(), None);
        assert_eq!(r.nullable_array_len().unwrap(), Some(0));
        assert_eq!(r.compact_nullable_array_len().unwrap(), None);
        assert_eq!(r.compact_array_len().unwrap(), 0);
        assert_eq!(r.uuid().unwrap(), Uuid::from_u128(7));
        let tags = r.tagged_fields().unwrap();
        assert_eq!(tags, vec![(1, &[9u8][..]), (300, &[][..])]);
        assert!(r.is_empty());
    }

    #[test]
    fn known_bytes() {
        let mut w = Writer::default();
        w.uvarint(300);
        w.compact_string("ab");
        w.string("ab");
        assert_eq!(
            w.buf,
            [0xac, 0x02, 0x03, b'a', b'b', 0x00, 0x02, b'a', b'b']
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        type Read = fn(&mut Reader<'_>) -> Result<()>;
        let cases: &[(&[u8], Read)] = &[
            (&[0x00], |r| r.i16().map(drop)),
            (&[0x00, 0x05, b'a'], |r| r.string().map(drop)),
            (&[0xff, 0xff], |r| r.string().map(drop)),
            (&[0x05, b'a'], |r| r.compact_string().map(drop)),
            (&[0x00], |r| r.compact_string().map(drop)),
            (&[0x03, 0xff, 0xfe], |r| r.compact_string().map(drop)),
            (&[0xff; 11], |r| r.uvarint().map(drop)),
            (&[0x7f, 0xff, 0xff, 0xff], |r| {
                r.nullable_array_len().map(drop)
            }),
            (&[0xff, 0xff, 0xff, 0xfe], |r| {
                r.nullable_array_len().map(drop)
            }),
            (&[0x01, 0x01, 0x05, 0x00], |r| r.tagged_fields().map(drop)),
            (&[0x01, 0x01, 0x05, 0x00], |r| r.tagged_fields().map(drop)),
        ];
        for (bytes, read) in cases {
            let mut r = Reader::new(bytes, "case");
            let err = read(&mut r).expect_err("must not decode");
            assert!(err.message.starts_with("case"), "{err}");
        }
    }
}
