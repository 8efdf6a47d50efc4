//! Durable acknowledgements (`write.caching=false`) observed from outside:
//! every `stromd` runs with syncwatch preloaded, which records the bytes
//! each fsync made durable, so the test sees what reached stable storage
//! without trusting Strom's own bookkeeping.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use strom_integration_tests::data::{Addrs, Outcome, batch, partition_state_any, produce_retrying};
use strom_integration_tests::{Cluster, ClusterOptions, wait_until};
use strom_jepsen::nemesis::storage;

fn watched(journal: &Path) -> ClusterOptions {
    ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .env("LD_PRELOAD", env!("STROM_SYNCWATCH_LIB"))
        .env("STROM_SYNC_JOURNAL", &journal.display().to_string())
}

async fn wait_whole_isr(addrs: &Addrs, topic: &str) {
    let whole = wait_until(Duration::from_secs(30), || async {
        partition_state_any(addrs, topic, 0)
            .await
            .is_some_and(|(l, _, isr)| l >= 0 && isr.len() == 3)
    })
    .await;
    assert!(whole, "{topic}: no full ISR");
}

/// Produces `n` records to `topic`-0 one by one with acks=all.
async fn produce_acked(addrs: &Addrs, topic: &str, n: usize) {
    for i in 0..n {
        let v = Bytes::from(format!("v{i:05}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        match produce_retrying(addrs, topic, 0, batch(std::slice::from_ref(&v)), deadline).await {
            Outcome::Acked(_) => {}
            o => panic!("{topic} record {i}: {o:?}"),
        }
    }
}

/// Per node: (bytes in `topic`-0's segments, of which fsynced).
fn synced_bytes(
    cluster: &Cluster,
    synced: &HashMap<(PathBuf, u64), u64>,
    topic: &str,
) -> Vec<(i32, u64, u64)> {
    (1..=3)
        .map(|id| {
            let (mut total, mut durable) = (0, 0);
            for seg in storage::segments(&cluster.node(id).data_dir, topic, 0) {
                let meta = std::fs::metadata(&seg).expect("stat segment");
                let path = std::fs::canonicalize(&seg).expect("canonical path");
                total += meta.len();
                durable += synced
                    .get(&(path, meta.ino()))
                    .copied()
                    .unwrap_or(0)
                    .min(meta.len());
            }
            (id, total, durable)
        })
        .collect()
}

/// With `write.caching=false` every acknowledged acks=all record is on the
/// disk of every ISR member when the producer hears the ack: kill -9 every
/// node right after the last ack, and each one's segment bytes are all
/// covered by an fsync it made. The default topic beside it, written the
/// same way, leaves its records in the page cache (the control: the check
/// can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_topic_acks_only_what_every_isr_member_fsynced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("sync-journal");
    let mut cluster = Cluster::start(3, watched(&journal)).await;
    let addrs = Addrs::of(&cluster);
    for (topic, caching) in [("durable", "false"), ("cached", "true")] {
        cluster
            .create_topic(
                1,
                topic,
                1,
                3,
                &[("min.insync.replicas", "2"), ("write.caching", caching)],
            )
            .await
            .expect("create topic");
        wait_whole_isr(&addrs, topic).await;
    }
    produce_acked(&addrs, "cached", 200).await;
    produce_acked(&addrs, "durable", 200).await;
    for id in 1..=3 {
        cluster.kill(id);
    }
    let synced = storage::synced_lengths(&journal).expect("read the journal");
    for (id, total, durable) in synced_bytes(&cluster, &synced, "durable") {
        assert!(total > 0, "node {id} holds the durable topic");
        assert_eq!(
            durable,
            total,
            "node {id}: {} acknowledged bytes of the durable topic were never fsynced",
            total - durable
        );
    }
    let cached = synced_bytes(&cluster, &synced, "cached");
    assert!(
        cached.iter().any(|(_, total, durable)| durable < total),
        "the default topic was fsynced everywhere, so this check cannot fail: {cached:?}"
    );
}

fn strom(cluster: &Cluster, args: &[&str]) -> std::process::Output {
    std::process::Command::new(strom_integration_tests::binary("strom", "STROM_BIN"))
        .arg("--bootstrap-server")
        .arg(cluster.bootstrap())
        .args(args)
        .output()
        .expect("run strom")
}

/// `strom configs alter` turns `write.caching` off on a running cluster:
/// from then on the topic's acknowledged records are on every ISR member's
/// disk, those written before the change included. An unknown value, or
/// the config on an unknown topic, is a typed error that changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_caching_turns_off_live_and_bad_values_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("sync-journal");
    let mut cluster = Cluster::start(3, watched(&journal)).await;
    let addrs = Addrs::of(&cluster);
    cluster
        .create_topic(1, "live", 1, 3, &[("min.insync.replicas", "2")])
        .await
        .expect("create topic");
    wait_whole_isr(&addrs, "live").await;
    produce_acked(&addrs, "live", 100).await;

    let describe = |c: &Cluster| {
        let out = strom(
            c,
            &[
                "--output",
                "json",
                "configs",
                "describe",
                "--entity-type",
                "topics",
                "--entity-name",
                "live",
            ],
        );
        assert!(
            out.status.success(),
            "describe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let before = describe(&cluster);
    for (args, code) in [
        (
            vec![
                "--entity-name",
                "live",
                "--add-config",
                "write.caching=sometimes",
            ],
            "INVALID_CONFIG",
        ),
        (
            vec![
                "--entity-name",
                "nope",
                "--add-config",
                "write.caching=false",
            ],
            "UNKNOWN_TOPIC_OR_PARTITION",
        ),
    ] {
        let mut all = vec!["configs", "alter", "--entity-type", "topics"];
        all.extend(args);
        let out = strom(&cluster, &all);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{all:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{all:?}: one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {code}")),
            "{all:?}: {stderr}"
        );
    }
    assert_eq!(
        describe(&cluster),
        before,
        "refused changes changed nothing"
    );

    let out = strom(
        &cluster,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "live",
            "--add-config",
            "write.caching=false",
        ],
    );
    assert!(
        out.status.success(),
        "alter: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = describe(&cluster);
    assert!(
        after.contains("\"write.caching\"") && after.contains("DYNAMIC_TOPIC_CONFIG"),
        "{after}"
    );
    // The brokers take the change from the metadata log; records acked
    // once every replica runs with it are durable, and so is all before.
    let mut durable_everywhere = false;
    for _ in 0..50 {
        produce_acked(&addrs, "live", 5).await;
        let synced = storage::synced_lengths(&journal).expect("read the journal");
        if synced_bytes(&cluster, &synced, "live")
            .iter()
            .all(|(_, total, durable)| durable == total)
        {
            durable_everywhere = true;
            break;
        }
    }
    assert!(durable_everywhere, "write.caching=false never took effect");
    produce_acked(&addrs, "live", 100).await;
    for id in 1..=3 {
        cluster.kill(id);
    }
    let synced = storage::synced_lengths(&journal).expect("read the journal");
    for (id, total, durable) in synced_bytes(&cluster, &synced, "live") {
        assert_eq!(
            durable, total,
            "node {id}: unsynced bytes after write.caching=false"
        );
    }
}
