//! `strom dev`: a local cluster of combined (controller + broker) `stromd`
//! processes for development. Node i (1-based) listens on 127.0.0.1 at
//! client port P+(i-1)*10, controller port +1, admin port +2, Kafka
//! wire-protocol port +3; data and log in
//! DIR/node-i. Ctrl-C or SIGTERM stops them all (SIGTERM, then SIGKILL after
//! a grace period); a node exiting on its own stops the rest.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;
use strom_client::{Admin, ClientConfig, ClusterDescription, Error, ErrorCode};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::output::{Format, Output, Table};

/// How long stopped nodes get for their controlled shutdown before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Default wait for the cluster to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Log lines shown when a node dies.
const LOG_TAIL_LINES: usize = 20;

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Number of combined nodes (1–9).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    nodes: u16,
    /// Where node i keeps its data (DIR/node-i) and log (DIR/node-i/stromd.log).
    #[arg(long, value_name = "DIR", default_value = ".strom-dev")]
    data_dir: PathBuf,
    /// Client port of node 1; node i uses P+(i-1)*10, P+(i-1)*10+1 (controller),
    /// P+(i-1)*10+2 (admin HTTP) and P+(i-1)*10+3 (Kafka protocol).
    #[arg(long, value_name = "P", default_value_t = 9092, value_parser = clap::value_parser!(u16).range(1..))]
    base_port: u16,
}

impl DevArgs {
    /// Checks that every node's ports fit in 1..=65535.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let highest = u32::from(self.base_port) + (u32::from(self.nodes) - 1) * 10 + 3;
        if highest > u32::from(u16::MAX) {
            return Err(format!(
                "--base-port {} leaves no room for {} nodes (ports up to {highest})",
                self.base_port, self.nodes
            ));
        }
        Ok(())
    }

    fn node_specs(&self) -> Vec<NodeSpec> {
        (1..=self.nodes)
            .map(|id| {
                let client_port = self.base_port + (id - 1) * 10;
                let dir = self.data_dir.join(format!("node-{id}"));
                NodeSpec {
                    id,
                    client_address: format!("127.0.0.1:{client_port}"),
                    controller_address: format!("127.0.0.1:{}", client_port + 1),
                    admin_address: format!("127.0.0.1:{}", client_port + 2),
                    kafka_address: format!("127.0.0.1:{}", client_port + 3),
                    log: dir.join("stromd.log"),
                    data_dir: dir,
                }
            })
            .collect()
    }
}

/// One node's addresses and files (JSON of the ready message).
#[derive(Debug, Clone, Serialize)]
struct NodeSpec {
    id: u16,
    client_address: String,
    controller_address: String,
    admin_address: String,
    kafka_address: String,
    data_dir: PathBuf,
    log: PathBuf,
}

impl NodeSpec {
    fn stromd_args(&self, voters: &str) -> Vec<String> {
        [
            "--node-id",
            &self.id.to_string(),
            "--roles",
            "controller,broker",
            "--controller-quorum-voters",
            voters,
            "--listen",
            &self.client_address,
            "--advertised-address",
            &self.client_address,
            "--controller-listen",
            &self.controller_address,
            "--admin-listen",
            &self.admin_address,
            "--kafka-listen",
            &self.kafka_address,
            "--kafka-advertised-address",
            &self.kafka_address,
            "--data-dir",
            &self.data_dir.to_string_lossy(),
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// `1@127.0.0.1:9093,2@127.0.0.1:9103,…`
fn quorum_voters(nodes: &[NodeSpec]) -> String {
    nodes
        .iter()
        .map(|n| format!("{}@{}", n.id, n.controller_address))
        .collect::<Vec<_>>()
        .join(",")
}

/// The cluster is ready (JSON: `{"cluster_id", "nodes": [...]}`).
#[derive(Debug, Serialize)]
struct Ready {
    cluster_id: String,
    nodes: Vec<NodeSpec>,
    #[serde(skip)]
    controller_leader: Option<i32>,
}

impl Table for Ready {
    fn table(&self) -> Vec<String> {
        let leader = self
            .controller_leader
            .map_or_else(|| "none".to_owned(), |l| l.to_string());
        let mut lines = vec![format!(
            "Strom dev cluster is up: {} node(s), cluster id {}, controller leader {leader}.",
            self.nodes.len(),
            self.cluster_id
        )];
        for n in &self.nodes {
            lines.push(format!(
                "  node {}: client {}  controller {}  admin http://{}  kafka {}  log {}",
                n.id,
                n.client_address,
                n.controller_address,
                n.admin_address,
                n.kafka_address,
                n.log.display()
            ));
        }
        let bootstrap = self
            .nodes
            .iter()
            .map(|n| n.client_address.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let flag = if bootstrap.starts_with(strom_client::DEFAULT_BOOTSTRAP_SERVER) {
            String::new()
        } else {
            format!(" --bootstrap-server {bootstrap}")
        };
        let rf = self.nodes.len().min(3);
        lines.push(String::new());
        lines.push("Try:".to_owned());
        lines.push(format!("  strom{flag} cluster describe"));
        lines.push(format!(
            "  strom{flag} topics create --topic demo --partitions 3 --replication-factor {rf}"
        ));
        lines.push(format!("  strom{flag} topics describe --topic demo"));
        lines.push(format!(
            "  seq 1000 | strom{flag} produce --topic demo --output json"
        ));
        lines.push(format!(
            "  strom{flag} consume --topic demo --from-beginning --max-messages 10"
        ));
        lines.push(format!(
            "  strom{flag} perf produce --topic demo --num-records 100000 --record-size 100"
        ));
        lines.push(format!(
            "  strom{flag} leader-election --election-type preferred --all-topic-partitions"
        ));
        let kafka = self
            .nodes
            .iter()
            .map(|n| n.kafka_address.as_str())
            .collect::<Vec<_>>()
            .join(",");
        lines.push(format!(
            "  kcat -b {kafka} -L    # any Kafka client, on the Kafka listeners"
        ));
        lines.push(String::new());
        lines.push("Press Ctrl-C to stop the cluster.".to_owned());
        lines
    }
}

/// A node that exited while it should have been running.
#[derive(Debug, Serialize)]
struct NodeExited {
    event: &'static str,
    node_id: u16,
    status: String,
    log: PathBuf,
    log_tail: Vec<String>,
}

impl Table for NodeExited {
    fn table(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "node {} exited unexpectedly ({}); last lines of {}:",
            self.node_id,
            self.status,
            self.log.display()
        )];
        lines.extend(self.log_tail.iter().map(|l| format!("  | {l}")));
        lines
    }
}

/// The running processes: their pids and a channel reporting exits.
#[derive(Debug)]
struct Cluster {
    specs: Vec<NodeSpec>,
    /// The pid of each node still running.
    running: Vec<Option<Pid>>,
    exits: mpsc::Receiver<(usize, std::io::Result<ExitStatus>)>,
}

pub(crate) async fn run(
    args: DevArgs,
    timeout: Option<Duration>,
    output: &Output,
) -> Result<(), Error> {
    let stromd = find_stromd()?;
    let specs = args.node_specs();
    let mut cluster = spawn(&stromd, specs)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| {
        dev_error(
            ErrorCode::UnknownServerError,
            format!("cannot watch SIGTERM: {e}"),
        )
    })?;
    let outcome = tokio::select! {
        ready = wait_ready(&cluster.specs, timeout.unwrap_or(READY_TIMEOUT)) => ready.map(Some),
        exit = cluster.exits.recv() => Err(node_exited(&mut cluster, exit, output)),
        _ = tokio::signal::ctrl_c() => Ok(None),
        _ = terminate.recv() => Ok(None),
    };
    let outcome = match outcome {
        Ok(Some(description)) => {
            output.print(&Ready {
                cluster_id: description.cluster_id,
                nodes: cluster.specs.clone(),
                controller_leader: description.controller.leader_id,
            });
            tokio::select! {
                exit = cluster.exits.recv() => Err(node_exited(&mut cluster, exit, output)),
                _ = tokio::signal::ctrl_c() => Ok(()),
                _ = terminate.recv() => Ok(()),
            }
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    if output.format() == Format::Table {
        output.lines(&["Stopping the cluster…".to_owned()]);
    }
    stop(&mut cluster, &mut terminate).await;
    outcome
}

fn dev_error(code: ErrorCode, message: String) -> Error {
    Error::strom(code, message)
}

/// `stromd` next to this executable, else `$STROMD_BIN`, else on `PATH`.
fn find_stromd() -> Result<PathBuf, Error> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("stromd")));
    if let Some(path) = beside.filter(|p| p.is_file()) {
        return Ok(path);
    }
    if let Some(path) = std::env::var_os("STROMD_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(dev_error(
            ErrorCode::InvalidRequest,
            format!(
                "STROMD_BIN points to {}, which is not a file",
                path.display()
            ),
        ));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("stromd"))
            .find(|p| p.is_file())
    });
    on_path.ok_or_else(|| {
        dev_error(
            ErrorCode::InvalidRequest,
            "cannot find the stromd binary (looked next to strom, in $STROMD_BIN and on PATH)"
                .to_owned(),
        )
    })
}

/// Starts every node in its own process group (so a terminal's Ctrl-C
/// reaches only `strom`, which then stops them in order).
fn spawn(stromd: &Path, specs: Vec<NodeSpec>) -> Result<Cluster, Error> {
    let voters = quorum_voters(&specs);
    let (tx, exits) = mpsc::channel(specs.len());
    let mut cluster = Cluster {
        running: Vec::new(),
        specs: Vec::new(),
        exits,
    };
    for (index, spec) in specs.into_iter().enumerate() {
        let child = start_node(stromd, &spec, &voters);
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                for pid in cluster.running.iter().flatten() {
                    let _ = kill(*pid, Signal::SIGKILL);
                }
                return Err(e);
            }
        };
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        let tx = tx.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = tx.send((index, status)).await;
        });
        cluster.running.push(pid);
        cluster.specs.push(spec);
    }
    Ok(cluster)
}

fn start_node(
    stromd: &Path,
    spec: &NodeSpec,
    voters: &str,
) -> Result<tokio::process::Child, Error> {
    let io_error = |what: String, e: std::io::Error| {
        dev_error(ErrorCode::KafkaStorageError, format!("{what}: {e}"))
    };
    std::fs::create_dir_all(&spec.data_dir)
        .map_err(|e| io_error(format!("cannot create {}", spec.data_dir.display()), e))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(|e| io_error(format!("cannot open {}", spec.log.display()), e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| io_error(format!("cannot open {}", spec.log.display()), e))?;
    tokio::process::Command::new(stromd)
        .args(spec.stromd_args(voters))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            dev_error(
                ErrorCode::InvalidRequest,
                format!(
                    "cannot start {} for node {}: {e}",
                    stromd.display(),
                    spec.id
                ),
            )
        })
}

/// Polls `cluster describe` until a controller leader is known and every
/// node is registered and unfenced.
async fn wait_ready(specs: &[NodeSpec], timeout: Duration) -> Result<ClusterDescription, Error> {
    let config = ClientConfig {
        bootstrap_servers: specs.iter().map(|s| s.client_address.clone()).collect(),
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        ..ClientConfig::default()
    };
    let admin = Admin::connect(config).await?;
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner.set_message(format!("starting {} node(s)…", specs.len()));
    let mut last = String::from("no node answered yet");
    let wait = async {
        loop {
            match admin.describe_cluster().await {
                Ok(cluster) if cluster.is_ready(specs.len()) => return cluster,
                Ok(cluster) => {
                    let unfenced = cluster
                        .brokers
                        .iter()
                        .filter(|b| b.state == strom_client::BrokerState::Unfenced)
                        .count();
                    let leader = cluster
                        .controller
                        .leader_id
                        .map_or("none".to_owned(), |l| l.to_string());
                    last = format!(
                        "controller leader {leader}, {unfenced}/{} brokers unfenced",
                        specs.len()
                    );
                }
                Err(e) => last = e.to_string(),
            }
            spinner.set_message(format!("waiting for the cluster: {last}"));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let result = tokio::time::timeout(timeout, wait).await;
    spinner.finish_and_clear();
    result.map_err(|_| {
        dev_error(
            ErrorCode::RequestTimedOut,
            format!(
                "the cluster did not become ready within {} ms ({last}); see the logs in {}",
                timeout.as_millis(),
                specs
                    .first()
                    .and_then(|s| s.data_dir.parent())
                    .map_or_else(String::new, |d| d.display().to_string())
            ),
        )
    })
}

/// Reports a node that exited on its own and turns it into the command's error.
fn node_exited(
    cluster: &mut Cluster,
    exit: Option<(usize, std::io::Result<ExitStatus>)>,
    output: &Output,
) -> Error {
    let Some((index, status)) = exit else {
        return dev_error(
            ErrorCode::UnknownServerError,
            "lost track of the node processes".to_owned(),
        );
    };
    cluster.running[index] = None;
    let spec = &cluster.specs[index];
    let status = match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("wait failed: {e}"),
    };
    output.print(&NodeExited {
        event: "node_exited",
        node_id: spec.id,
        status: status.clone(),
        log: spec.log.clone(),
        log_tail: log_tail(&spec.log, LOG_TAIL_LINES),
    });
    dev_error(
        ErrorCode::BrokerNotAvailable,
        format!(
            "node {} exited unexpectedly ({status}); see {}",
            spec.id,
            spec.log.display()
        ),
    )
}

/// SIGTERM to every running node, SIGKILL to those still running after
/// [`STOP_GRACE`] or on a second Ctrl-C/SIGTERM.
async fn stop(cluster: &mut Cluster, terminate: &mut tokio::signal::unix::Signal) {
    for pid in cluster.running.iter().flatten() {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let graceful = async {
        while cluster.running.iter().any(Option::is_some) {
            match cluster.exits.recv().await {
                Some((index, _)) => cluster.running[index] = None,
                None => break,
            }
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(STOP_GRACE, graceful) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    for pid in cluster.running.iter().flatten() {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    while cluster.running.iter().any(Option::is_some) {
        match tokio::time::timeout(Duration::from_secs(2), cluster.exits.recv()).await {
            Ok(Some((index, _))) => cluster.running[index] = None,
            _ => break,
        }
    }
}

/// The last `lines` lines of a log file (reads at most its last 64 KiB).
fn log_tail(path: &Path, lines: usize) -> Vec<String> {
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..]
                .iter()
                .map(|l| (*l).to_owned())
                .collect()
        }
        Err(e) => vec![format!("(cannot read the log: {e})")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(nodes: u16, base_port: u16) -> DevArgs {
        DevArgs {
            nodes,
            data_dir: PathBuf::from("dir"),
            base_port,
        }
    }

    #[test]
    fn nodes_get_spaced_ports_and_own_dirs() {
        let specs = args(3, 9092).node_specs();
        let ports: Vec<(&str, &str, &str, &str)> = specs
            .iter()
            .map(|s| {
                (
                    s.client_address.as_str(),
                    s.controller_address.as_str(),
                    s.admin_address.as_str(),
                    s.kafka_address.as_str(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                (
                    "127.0.0.1:9092",
                    "127.0.0.1:9093",
                    "127.0.0.1:9094",
                    "127.0.0.1:9095"
                ),
                (
                    "127.0.0.1:9102",
                    "127.0.0.1:9103",
                    "127.0.0.1:9104",
                    "127.0.0.1:9105"
                ),
                (
                    "127.0.0.1:9112",
                    "127.0.0.1:9113",
                    "127.0.0.1:9114",
                    "127.0.0.1:9115"
                ),
            ]
        );
        assert_eq!(specs[1].data_dir, Path::new("dir/node-2"));
        assert_eq!(specs[1].log, Path::new("dir/node-2/stromd.log"));
        assert_eq!(
            quorum_voters(&specs),
            "1@127.0.0.1:9093,2@127.0.0.1:9103,3@127.0.0.1:9113"
        );
    }

    #[test]
    fn stromd_gets_the_documented_flags() {
        let specs = args(1, 20000).node_specs();
        let argv = specs[0].stromd_args("1@127.0.0.1:20001");
        assert_eq!(
            argv.join(" "),
            "--node-id 1 --roles controller,broker --controller-quorum-voters 1@127.0.0.1:20001 \
             --listen 127.0.0.1:20000 --advertised-address 127.0.0.1:20000 \
             --controller-listen 127.0.0.1:20001 --admin-listen 127.0.0.1:20002 \
             --kafka-listen 127.0.0.1:20003 --kafka-advertised-address 127.0.0.1:20003 --data-dir dir/node-1"
        );
    }

    #[test]
    fn ports_must_fit() {
        assert!(args(3, 9092).validate().is_ok());
        assert!(args(3, 65512).validate().is_ok());
        assert!(args(3, 65513).validate().is_err());
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stromd.log");
        let text: String = (0..30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path, 3);
        assert_eq!(tail, ["line 27", "line 28", "line 29"]);
        assert_eq!(log_tail(&dir.path().join("missing"), 3).len(), 1);
    }
}
