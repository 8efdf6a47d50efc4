use super::*;
use crate::batch::{Compression, RecordBatchBuilder};

fn batch(base_offset: i64, records: usize, timestamp: i64) -> Bytes {
    let mut builder = RecordBatchBuilder::new(Compression::None).base_offset(base_offset);
    for i in 0..records {
        builder.append(timestamp + i as i64, None, Some(&[7u8; 100]), &[]);
    }
    builder.build()
}

/// A segment holding `n` batches of 3 records at offsets 100, 103, ...
fn filled(dir: &Path, n: usize) -> Segment {
    let segment = Segment::create(dir, 100, 256).expect("create");
    for i in 0..n {
        let bytes = batch(100 + 3 * i as i64, 3, 1_000 + 10 * i as i64);
        let summary = summarize(&bytes).expect("valid");
        segment.append(&bytes, None, &[summary]).expect("append");
    }
    segment
}

#[test]
fn file_names_are_twenty_digit_base_offsets() {
    assert_eq!(file_name(42, LOG_SUFFIX), "00000000000000000042.log");
    assert_eq!(
        parse_file_name("00000000000000000042.timeindex"),
        Some((42, "timeindex"))
    );
    assert_eq!(parse_file_name("42.log"), None);
    assert_eq!(parse_file_name("0000000000000000004x.log"), None);
}

#[test]
fn appends_build_a_sparse_index_and_lookups_find_the_containing_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = filled(dir.path(), 20);
    let entries = segment
        .with_index(|_, index| index.offsets.len())
        .expect("loaded");
    assert!(
        entries > 3 && entries < 20,
        "sparse: {entries} entries for 20 batches"
    );
    for offset in 100..160 {
        let (_, summary) = segment.translate(offset).expect("io").expect("present");
        assert!(
            summary.base_offset <= offset && offset <= summary.last_offset,
            "offset {offset}"
        );
    }
    assert!(segment.translate(160).expect("io").is_none());
    assert_eq!(segment.next_offset().expect("loaded"), 160);
}

#[test]
fn sealed_index_files_reload_lazily_and_bad_files_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = filled(dir.path(), 20);
    original.seal().expect("seal");
    let expected = original
        .with_index(|_, i| (i.offsets.clone(), i.next_offset, i.max_timestamp))
        .expect("loaded");

    let reopened = Segment::open(dir.path(), 100, 256).expect("open");
    assert_eq!(
        reopened.index_heap_bytes(),
        0,
        "not loaded before first use"
    );
    let loaded = reopened
        .with_index(|_, i| (i.offsets.clone(), i.next_offset, i.max_timestamp))
        .expect("load");
    assert_eq!(loaded, expected);

    // A plausible but wrong index (shifted positions) is caught on lookup.
    let index_path = dir.path().join(file_name(100, INDEX_SUFFIX));
    let mut bytes = fs::read(&index_path).expect("read index");
    let last = bytes.len() - 1;
    bytes[last] = bytes[last].wrapping_add(1);
    fs::write(&index_path, &bytes).expect("write index");
    let damaged = Segment::open(dir.path(), 100, 256).expect("open");
    for offset in 100..160 {
        let (_, summary) = damaged.translate(offset).expect("io").expect("present");
        assert!(summary.base_offset <= offset && offset <= summary.last_offset);
    }
    fs::write(&index_path, b"garbage").expect("write index");
    let garbage = Segment::open(dir.path(), 100, 256).expect("open");
    assert_eq!(garbage.next_offset().expect("rebuilt"), 160);
}

#[test]
fn truncation_removes_the_containing_batch_and_rebuilds_the_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = filled(dir.path(), 20);
    segment.truncate_to(131).expect("truncate");
    assert_eq!(
        segment.next_offset().expect("loaded"),
        130,
        "batch 130..=132 removed whole"
    );
    assert_eq!(segment.max_timestamp().expect("loaded"), 1_000 + 90 + 2);
    let size = segment.size();
    assert_eq!(
        fs::metadata(dir.path().join(file_name(100, LOG_SUFFIX)))
            .expect("stat")
            .len(),
        size
    );
    let bytes = batch(130, 2, 5_000);
    segment
        .append(&bytes, None, &[summarize(&bytes).expect("valid")])
        .expect("append");
    assert_eq!(segment.next_offset().expect("loaded"), 132);
}

#[test]
fn find_timestamp_returns_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = filled(dir.path(), 20);
    // Batch i holds timestamps 1000+10i .. 1000+10i+2 at offsets 100+3i ..
    assert_eq!(
        segment.find_timestamp(0, 0).expect("io"),
        Some((100, 1_000))
    );
    assert_eq!(
        segment.find_timestamp(1_051, 0).expect("io"),
        Some((116, 1_051))
    );
    assert_eq!(
        segment.find_timestamp(1_053, 0).expect("io"),
        Some((118, 1_060))
    );
    assert_eq!(
        segment.find_timestamp(1_000, 110).expect("io"),
        Some((110, 1_031))
    );
    assert_eq!(segment.find_timestamp(1_193, 0).expect("io"), None);
}

#[test]
fn reads_return_whole_batches_within_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = filled(dir.path(), 5);
    let one = segment
        .read(104, 1, i64::MAX)
        .expect("io")
        .expect("present");
    let batches: Vec<_> = crate::batch::BatchIter::new(one)
        .collect::<Result<_>>()
        .expect("whole");
    assert_eq!(
        batches.len(),
        1,
        "at least one batch even if larger than max_bytes"
    );
    assert_eq!(batches[0].base_offset(), 103);
    let bounded = segment
        .read(100, 1 << 20, 106)
        .expect("io")
        .expect("present");
    assert_eq!(crate::batch::BatchIter::new(bounded).count(), 2);
}

#[test]
fn an_open_segment_costs_one_fd_and_a_small_fixed_struct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = Segment::open(dir.path(), 100, 256).unwrap_or_else(|_| {
        filled(dir.path(), 0);
        Segment::open(dir.path(), 100, 256).expect("open")
    });
    let fixed = std::mem::size_of::<Segment>();
    println!(
        "size_of::<Segment>() = {fixed}, dir path heap = {}",
        dir.path().as_os_str().len()
    );
    assert!(fixed <= 256, "segment struct grew to {fixed} bytes");
    assert_eq!(
        closed.index_heap_bytes(),
        0,
        "closed segments hold no index until used"
    );
}
