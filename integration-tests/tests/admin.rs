//! The HTTP admin endpoint: health, readiness and Prometheus metrics.

use std::io::{Read, Write};
use std::time::Duration;

use strom_integration_tests::{Cluster, ClusterOptions, wait_until};

/// A plain HTTP/1.1 GET: (status code, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Parses the exposition into (name with labels, value), checking every
/// sample line is well formed.
fn samples(body: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("malformed sample line '{line}'"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("malformed value in '{line}'"));
        assert!(
            name.starts_with("strom_"),
            "metric without the strom_ prefix: {line}"
        );
        out.push((name.to_owned(), value));
    }
    assert!(
        body.trim_end().ends_with("# EOF"),
        "exposition ends with # EOF"
    );
    out
}

fn value(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .sum()
}

fn cluster_sum(cluster: &Cluster, name: &str) -> f64 {
    cluster
        .nodes
        .values()
        .filter_map(|n| get(n.admin_port, "/metrics"))
        .map(|(_, body)| value(&samples(&body), name))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_reports_health_readiness_and_metrics() {
    let options = ClusterOptions::default()
        .set("broker.session.timeout.ms", "3000")
        .set("broker.heartbeat.interval.ms", "500")
        .set("auto.leader.rebalance.enable", "false");
    let mut cluster = Cluster::start(3, options).await;
    cluster
        .create_topic(1, "watched", 6, 3, &[])
        .await
        .expect("create");
    for node in cluster.nodes.values() {
        assert_eq!(get(node.admin_port, "/healthz").map(|r| r.0), Some(200));
        let ready = wait_until(Duration::from_secs(10), || async {
            get(node.admin_port, "/readyz").is_some_and(|r| r.0 == 200)
        })
        .await;
        assert!(ready, "node {} ready", node.id);
        assert_eq!(get(node.admin_port, "/nope").map(|r| r.0), Some(404));
    }
    let c = &cluster;
    let one_active = wait_until(Duration::from_secs(5), || async {
        tokio::task::block_in_place(|| cluster_sum(c, "strom_controller_active")) == 1.0
    })
    .await;
    assert!(one_active, "exactly one active controller");
    assert_eq!(
        tokio::task::block_in_place(|| cluster_sum(c, "strom_partitions_under_replicated")),
        0.0
    );
    assert_eq!(
        tokio::task::block_in_place(|| cluster_sum(c, "strom_partitions_offline")),
        0.0
    );

    // Kill a broker that is not the controller: its partitions lose a
    // replica, so the survivors' leaders report them under-replicated.
    let controller = cluster.controller_leader().await.expect("leader");
    let victim = (1..=3).find(|id| *id != controller).expect("victim");
    cluster.kill(victim);
    let c = &cluster;
    let moved = wait_until(Duration::from_secs(20), || async {
        tokio::task::block_in_place(|| cluster_sum(c, "strom_partitions_under_replicated")) == 6.0
    })
    .await;
    assert!(
        moved,
        "under-replicated gauge counts the 6 partitions missing a replica"
    );
    let fenced = tokio::task::block_in_place(|| cluster_sum(c, "strom_brokers{state=\"fenced\"}"));
    assert_eq!(fenced, 1.0);

    cluster.start_node(victim);
    let c = &cluster;
    let back = wait_until(Duration::from_secs(30), || async {
        tokio::task::block_in_place(|| cluster_sum(c, "strom_partitions_under_replicated")) == 0.0
            && get(c.node(victim).admin_port, "/readyz").is_some_and(|r| r.0 == 200)
    })
    .await;
    assert!(
        back,
        "gauges return to zero once the broker is back\n{}",
        cluster.dump_logs()
    );
}
