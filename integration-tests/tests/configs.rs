//! Live configuration (kafka-configs) on real nodes: topic and broker
//! configs changed on a running cluster take effect without a restart,
//! describe names each value's source, and bad changes are typed errors
//! that change nothing.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strom_client::{
    Admin, AlterConfigOp, ClientConfig, ConfigEntry, ConfigResource, ConfigSource as S, Error,
};
use strom_integration_tests::data::{
    Addrs, batch, partition_state_any, produce_once, wait_leader_serving,
};
use strom_integration_tests::{Cluster, ClusterOptions, binary, wait_until};
use strom_proto::v1::ErrorCode;

async fn admin(cluster: &Cluster) -> Admin {
    let config = ClientConfig {
        bootstrap_servers: strom_client::parse_bootstrap_servers(&cluster.bootstrap())
            .expect("addresses"),
        ..Default::default()
    };
    Admin::connect(config).await.expect("admin")
}

async fn describe(admin: &Admin, resource: &ConfigResource) -> Vec<ConfigEntry> {
    admin.describe_configs(resource).await.expect("describe")
}

async fn alter(admin: &Admin, resource: &ConfigResource, ops: Vec<AlterConfigOp>) {
    admin
        .incremental_alter_configs(resource, ops, false)
        .await
        .unwrap_or_else(|e| panic!("alter {resource}: {e}"));
}

/// `(value, source)` of config `name`.
fn entry(entries: &[ConfigEntry], name: &str) -> (String, S) {
    let e = entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} described in {entries:?}"));
    (e.value.clone().unwrap_or_default(), e.source)
}

fn value(v: &str, source: S) -> (String, S) {
    (v.to_owned(), source)
}

fn record_of(size: usize) -> Bytes {
    batch(&[Bytes::from(vec![b'x'; size])])
}

/// Produces `records` (acks=all) to the leader `to` until the outcome is
/// `want` (`None`: acknowledged; `Some(code)`: refused with it): brokers
/// apply a committed config change when they replay it, moments later.
async fn until_produce(
    addrs: &Addrs,
    to: i32,
    topic: &str,
    records: &Bytes,
    want: Option<ErrorCode>,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = produce_once(
            addrs,
            to,
            topic,
            0,
            records.clone(),
            -1,
            Duration::from_secs(2),
        )
        .await;
        if r.as_ref().err().map(|e| e.code) == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "produce to {topic} never gave {want:?}; last: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_and_broker_configs_take_effect_live() {
    // Three combined nodes and broker-only node 4, which the test kills;
    // every node started with a static log.segment.bytes.
    let mut cluster = Cluster::start(
        3,
        ClusterOptions::default()
            .broker_only(1)
            .set("broker.session.timeout.ms", "3000")
            .set("broker.heartbeat.interval.ms", "500")
            .set("auto.leader.rebalance.enable", "false")
            .set("log.segment.bytes", "1048576"),
    )
    .await;
    let admin = admin(&cluster).await;
    let addrs = Addrs::of(&cluster);
    cluster
        .create_topic_assigned(1, "live", &[&[1, 4]], &[])
        .await
        .expect("create live");
    cluster
        .create_topic_assigned(1, "plain", &[&[2]], &[])
        .await
        .expect("create plain");
    for t in ["live", "plain"] {
        wait_leader_serving(&addrs, t, 0, Duration::from_secs(20))
            .await
            .expect("leader serves");
    }
    let live = ConfigResource::Topic("live".into());
    let plain = ConfigResource::Topic("plain".into());
    let big = record_of(4096);

    let d = describe(&admin, &live).await;
    assert_eq!(
        entry(&d, "segment.bytes"),
        value("1048576", S::StaticBrokerConfig)
    );
    assert_eq!(
        entry(&d, "max.message.bytes"),
        value("1048576", S::DefaultConfig)
    );
    assert_eq!(
        entry(&d, "min.insync.replicas"),
        value("1", S::DefaultConfig)
    );
    until_produce(&addrs, 1, "live", &big, None).await;

    // A lower max.message.bytes refuses what fitted before, on the open log.
    alter(
        &admin,
        &live,
        vec![AlterConfigOp::set("max.message.bytes", "1024")],
    )
    .await;
    until_produce(&addrs, 1, "live", &big, Some(ErrorCode::RecordTooLarge)).await;
    until_produce(&addrs, 1, "live", &record_of(10), None).await;
    let d = describe(&admin, &live).await;
    assert_eq!(
        entry(&d, "max.message.bytes"),
        value("1024", S::DynamicTopicConfig)
    );
    // Deleting it returns to the default.
    alter(
        &admin,
        &live,
        vec![AlterConfigOp::delete("max.message.bytes")],
    )
    .await;
    until_produce(&addrs, 1, "live", &big, None).await;
    let d = describe(&admin, &live).await;
    assert_eq!(
        entry(&d, "max.message.bytes"),
        value("1048576", S::DefaultConfig)
    );

    // min.insync.replicas raised above the in-sync replicas: acks=all
    // writes are refused at once, and accepted again when it is lowered.
    cluster.kill(4);
    assert!(
        wait_until(Duration::from_secs(20), || async {
            partition_state_any(&addrs, "live", 0)
                .await
                .is_some_and(|(_, _, isr)| isr == [1])
        })
        .await,
        "broker 4 leaves the ISR"
    );
    until_produce(&addrs, 1, "live", &big, None).await;
    alter(
        &admin,
        &live,
        vec![AlterConfigOp::set("min.insync.replicas", "2")],
    )
    .await;
    until_produce(&addrs, 1, "live", &big, Some(ErrorCode::NotEnoughReplicas)).await;
    alter(
        &admin,
        &live,
        vec![AlterConfigOp::delete("min.insync.replicas")],
    )
    .await;
    until_produce(&addrs, 1, "live", &big, None).await;

    // The cluster-wide broker default reaches topics without their own value.
    let default = ConfigResource::BrokerDefault;
    alter(
        &admin,
        &default,
        vec![AlterConfigOp::set("message.max.bytes", "2048")],
    )
    .await;
    until_produce(&addrs, 2, "plain", &big, Some(ErrorCode::RecordTooLarge)).await;
    let d = describe(&admin, &plain).await;
    assert_eq!(
        entry(&d, "max.message.bytes"),
        value("2048", S::DynamicDefaultBrokerConfig)
    );
    let d = describe(&admin, &ConfigResource::Broker(2)).await;
    assert_eq!(
        entry(&d, "message.max.bytes"),
        value("2048", S::DynamicDefaultBrokerConfig)
    );
    assert_eq!(
        entry(&d, "log.segment.bytes"),
        value("1048576", S::StaticBrokerConfig)
    );
    assert_eq!(
        entry(&d, "replica.fetch.max.bytes"),
        value("1048576", S::DefaultConfig)
    );
    assert!(
        d.iter()
            .any(|e| e.name == "replica.fetch.max.bytes" && e.read_only)
    );
    // A broker's own value wins over the cluster-wide default, on it only.
    alter(
        &admin,
        &ConfigResource::Broker(2),
        vec![AlterConfigOp::set("message.max.bytes", "8192")],
    )
    .await;
    until_produce(&addrs, 2, "plain", &big, None).await;
    let d = describe(&admin, &ConfigResource::Broker(2)).await;
    assert_eq!(
        entry(&d, "message.max.bytes"),
        value("8192", S::DynamicBrokerConfig)
    );
    let d = describe(&admin, &ConfigResource::Broker(1)).await;
    assert_eq!(
        entry(&d, "message.max.bytes"),
        value("2048", S::DynamicDefaultBrokerConfig)
    );
    alter(
        &admin,
        &ConfigResource::Broker(2),
        vec![AlterConfigOp::delete("message.max.bytes")],
    )
    .await;
    alter(
        &admin,
        &default,
        vec![AlterConfigOp::delete("message.max.bytes")],
    )
    .await;
    let d = describe(&admin, &ConfigResource::Broker(2)).await;
    assert_eq!(
        entry(&d, "message.max.bytes"),
        value("1048576", S::DefaultConfig)
    );

    // The cluster-wide min.insync.replicas holds for controllers and
    // brokers alike: `live` has one in-sync replica left.
    alter(
        &admin,
        &default,
        vec![AlterConfigOp::set("min.insync.replicas", "2")],
    )
    .await;
    until_produce(&addrs, 1, "live", &big, Some(ErrorCode::NotEnoughReplicas)).await;
    let d = describe(&admin, &live).await;
    assert_eq!(
        entry(&d, "min.insync.replicas"),
        value("2", S::DynamicDefaultBrokerConfig)
    );
    alter(
        &admin,
        &default,
        vec![AlterConfigOp::delete("min.insync.replicas")],
    )
    .await;
    until_produce(&addrs, 1, "live", &big, None).await;
}

fn strom(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(binary("strom", "STROM_BIN"))
        .arg("--bootstrap-server")
        .arg(cluster.bootstrap())
        .args(args)
        .output()
        .expect("run strom")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Runs the CLI expecting exit code 1 and one `error: CODE: …` line naming `part`.
fn refused(cluster: &Cluster, args: &[&str], code: &str, part: &str) {
    let out = tokio::task::block_in_place(|| strom(cluster, args));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(
        err.starts_with(&format!("error: {code}: ")) && err.trim_end().lines().count() == 1,
        "{args:?}: {err}"
    );
    assert!(err.contains(part), "{args:?}: {err}");
}

fn ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = tokio::task::block_in_place(|| strom(cluster, args));
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_changes_are_typed_errors_that_change_nothing() {
    let cluster = Cluster::start(1, ClusterOptions::default()).await;
    cluster
        .create_topic(1, "t", 1, 1, &[])
        .await
        .expect("create");
    let admin = admin(&cluster).await;
    let topic = ConfigResource::Topic("t".into());
    let everything = [
        topic.clone(),
        ConfigResource::Broker(1),
        ConfigResource::BrokerDefault,
    ];
    let mut before = Vec::new();
    for r in &everything {
        before.push(describe(&admin, r).await);
    }

    let set = AlterConfigOp::set;
    // (resource, changes, error code, part of the message)
    let cases: Vec<(ConfigResource, Vec<AlterConfigOp>, ErrorCode, &str)> = vec![
        (
            topic.clone(),
            vec![set("retention.hours", "1")],
            ErrorCode::InvalidConfig,
            "retention.hours",
        ),
        (
            topic.clone(),
            vec![set("segment.bytes", "big")],
            ErrorCode::InvalidConfig,
            "segment.bytes",
        ),
        (
            topic.clone(),
            vec![
                set("segment.bytes", "1048576"),
                set("min.insync.replicas", "2"),
            ],
            ErrorCode::InvalidConfig,
            "min.insync.replicas",
        ),
        (
            topic.clone(),
            vec![set("compression.type", "zstd")],
            ErrorCode::InvalidConfig,
            "compression.type",
        ),
        (
            ConfigResource::Topic("nope".into()),
            vec![set("segment.bytes", "1048576")],
            ErrorCode::UnknownTopicOrPartition,
            "nope",
        ),
        (
            ConfigResource::Broker(9),
            vec![set("log.segment.bytes", "1048576")],
            ErrorCode::BrokerIdNotRegistered,
            "9",
        ),
        (
            ConfigResource::Broker(1),
            vec![set("replica.fetch.max.bytes", "1")],
            ErrorCode::InvalidConfig,
            "restart",
        ),
        (
            ConfigResource::Broker(1),
            vec![set("min.insync.replicas", "1")],
            ErrorCode::InvalidConfig,
            "cluster-wide",
        ),
        (
            ConfigResource::BrokerDefault,
            vec![set("log.roll.ms", "1"), set("log.segment.bytes", "1")],
            ErrorCode::InvalidConfig,
            "log.segment.bytes",
        ),
    ];
    for (resource, ops, code, part) in cases {
        let what = format!("{resource}: {ops:?}");
        match admin.incremental_alter_configs(&resource, ops, false).await {
            Err(Error::Strom(e)) => {
                assert_eq!(e.code, code, "{what}: {e}");
                assert!(e.message.contains(part), "{what}: {e}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    for (resource, code) in [
        (
            ConfigResource::Topic("nope".into()),
            ErrorCode::UnknownTopicOrPartition,
        ),
        (ConfigResource::Broker(9), ErrorCode::BrokerIdNotRegistered),
    ] {
        let e = admin
            .describe_configs(&resource)
            .await
            .expect_err("unknown");
        assert_eq!(e.code(), Some(code), "{resource}");
    }
    let mut after = Vec::new();
    for r in &everything {
        after.push(describe(&admin, r).await);
    }
    assert_eq!(before, after, "nothing changed");

    // The CLI: one `error:` line and exit code 1, nothing changed.
    let bad: &[(&[&str], &str, &str)] = &[
        (
            &[
                "configs",
                "alter",
                "--entity-type",
                "topics",
                "--entity-name",
                "t",
                "--add-config",
                "nope=1",
            ],
            "INVALID_CONFIG",
            "nope",
        ),
        (
            &[
                "configs",
                "alter",
                "--entity-type",
                "topics",
                "--entity-name",
                "t",
                "--add-config",
                "flush.ms=-3",
            ],
            "INVALID_CONFIG",
            "flush.ms",
        ),
        (
            &[
                "configs",
                "alter",
                "--entity-type",
                "topics",
                "--entity-name",
                "t",
                "--add-config",
                "flush.ms",
            ],
            "INVALID_CONFIG",
            "flush.ms",
        ),
        (
            &[
                "configs",
                "alter",
                "--entity-type",
                "topics",
                "--entity-name",
                "u",
                "--delete-config",
                "flush.ms",
            ],
            "UNKNOWN_TOPIC_OR_PARTITION",
            "u",
        ),
        (
            &[
                "configs",
                "describe",
                "--entity-type",
                "brokers",
                "--entity-name",
                "9",
            ],
            "BROKER_ID_NOT_REGISTERED",
            "9",
        ),
        (
            &[
                "configs",
                "alter",
                "--entity-type",
                "brokers",
                "--entity-name",
                "1",
                "--add-config",
                "socket.request.max.bytes=1",
            ],
            "INVALID_CONFIG",
            "socket.request.max.bytes",
        ),
        (
            &[
                "topics",
                "create",
                "--topic",
                "z",
                "--partitions",
                "1",
                "--replication-factor",
                "1",
                "--config",
                "compression.type=gzip",
            ],
            "INVALID_CONFIG",
            "compression.type",
        ),
    ];
    for (args, code, part) in bad {
        refused(&cluster, args, code, part);
    }
    let usage = tokio::task::block_in_place(|| {
        strom(
            &cluster,
            &[
                "configs",
                "describe",
                "--entity-type",
                "topics",
                "--entity-default",
            ],
        )
    });
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
    assert_eq!(describe(&admin, &topic).await, before[0], "nothing changed");

    // Table and JSON output.
    let table = ok(
        &cluster,
        &[
            "configs",
            "describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "t",
        ],
    );
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "VALUE", "SOURCE"]);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["segment.bytes", "1073741824", "DEFAULT_CONFIG"]),
        "{table}"
    );
    let out = ok(
        &cluster,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "t",
            "--add-config",
            "segment.bytes=1048576,flush.messages=100",
        ],
    );
    assert_eq!(out.trim(), "Completed updating config for topic t.");
    let json = ok(
        &cluster,
        &[
            "--output",
            "json",
            "configs",
            "describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "t",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    let segment = json
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["name"] == "segment.bytes")
        .expect("segment.bytes");
    assert_eq!(
        *segment,
        serde_json::json!({
            "name": "segment.bytes",
            "value": "1048576",
            "source": "DYNAMIC_TOPIC_CONFIG",
            "read_only": false,
            "sensitive": false,
        })
    );
    ok(
        &cluster,
        &[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "t",
            "--delete-config",
            "segment.bytes,flush.messages",
        ],
    );
    assert_eq!(
        describe(&admin, &topic).await,
        before[0],
        "back to the defaults"
    );

    let out = ok(
        &cluster,
        &[
            "configs",
            "alter",
            "--entity-type",
            "brokers",
            "--entity-default",
            "--add-config",
            "log.roll.ms=3600000",
        ],
    );
    assert_eq!(
        out.trim(),
        "Completed updating default config for brokers in the cluster."
    );
    let table = ok(
        &cluster,
        &[
            "configs",
            "describe",
            "--entity-type",
            "brokers",
            "--entity-default",
        ],
    );
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["log.roll.ms", "3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"]),
        "{table}"
    );
    let out = ok(
        &cluster,
        &[
            "configs",
            "alter",
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
            "--add-config",
            "log.roll.ms=60000",
        ],
    );
    assert_eq!(out.trim(), "Completed updating config for broker 1.");
    let table = ok(
        &cluster,
        &[
            "configs",
            "describe",
            "--entity-type",
            "brokers",
            "--entity-name",
            "1",
        ],
    );
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["log.roll.ms", "60000", "DYNAMIC_BROKER_CONFIG"]),
        "{table}"
    );

    // `topics create --config` still sets topic configs.
    ok(
        &cluster,
        &[
            "topics",
            "create",
            "--topic",
            "c",
            "--partitions",
            "1",
            "--replication-factor",
            "1",
            "--config",
            "segment.bytes=1048576",
        ],
    );
    let d = describe(&admin, &ConfigResource::Topic("c".into())).await;
    assert_eq!(
        entry(&d, "segment.bytes"),
        value("1048576", S::DynamicTopicConfig)
    );
}
