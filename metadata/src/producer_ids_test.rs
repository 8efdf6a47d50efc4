use super::*;
use crate::ErrorKind;
use crate::testutil::Cluster;

#[test]
fn blocks_are_disjoint_and_survive_snapshots() {
    let mut c = Cluster::with_brokers(&[1, 2]);
    let mut seen = Vec::new();
    for broker in [1, 2, 1, 1, 2] {
        let epoch = 10 + i64::from(broker);
        let (block, rec) = allocate_producer_ids(&c.image, broker, epoch).expect("allocated");
        assert_eq!(block.len, PRODUCER_ID_BLOCK_SIZE);
        c.apply(vec![rec]).expect("applies");
        seen.push(block.first);
    }
    assert_eq!(seen, vec![0, 1000, 2000, 3000, 4000]);
    assert_eq!(c.image.next_producer_id(), 5000);
    let restored = ClusterImage::from_snapshot(&c.image.to_snapshot()).expect("restores");
    assert_eq!(restored.next_producer_id(), 5000);
}

#[test]
fn only_a_current_broker_gets_a_block() {
    let c = Cluster::with_brokers(&[1]);
    let table: &[(i32, i64, ErrorKind)] = &[
        (7, 17, ErrorKind::BrokerIdNotRegistered),
        (1, 10, ErrorKind::StaleBrokerEpoch),
    ];
    for &(broker, epoch, want) in table {
        let e = allocate_producer_ids(&c.image, broker, epoch).expect_err("refused");
        assert_eq!(e.code, want, "broker {broker} epoch {epoch}");
    }
}

#[test]
fn a_record_that_does_not_grow_the_next_id_is_rejected_at_apply() {
    let mut c = Cluster::with_brokers(&[1]);
    let (_, rec) = allocate_producer_ids(&c.image, 1, 11).expect("allocated");
    c.apply(vec![rec.clone()]).expect("applies");
    // Decided on the same (now stale) image twice: the second must not
    // hand out the same ids again.
    let mut image = c.image.clone();
    let e = image
        .apply_batch(image.offset() + 1, &[rec])
        .expect_err("replayed block");
    assert_eq!(e.code, ErrorKind::InvalidRequest);
    assert_eq!(image, c.image, "nothing applied");
}
