//! The test harness: a cluster of real `stromd` processes on free loopback
//! ports with temporary data dirs, which tests can kill -9, pause
//! (SIGSTOP/SIGCONT), terminate gracefully and restart.
//!
//! Binaries are taken from the cargo target dir the tests were built in
//! (`scripts/test` builds them first), or from `STROMD_BIN` / `STROM_BIN`.
//!
//! * `data` — produce, fetch and check helpers on the data path.
//! * `tmpfs` — a data dir on a tmpfs of its own (root only).

pub mod data;
pub mod tmpfs;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use strom_proto::StromError;
use strom_proto::v1::controller_service_client::ControllerServiceClient;
use strom_proto::v1::metadata_service_client::MetadataServiceClient;
use strom_proto::v1::*;
use tonic::transport::{Channel, Endpoint};

/// Path of a workspace binary next to the test executable.
pub fn binary(name: &str, env: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> or target/debug/<bin> → target/debug/<name>
    let mut dir = exe.parent().expect("target dir");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("target dir");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --bin {name}` first (scripts/test does)",
        path.display()
    );
    path
}

/// A port free right now, below Linux's ephemeral range (32768–60999): a
/// port the kernel hands out for outgoing connections could be taken by
/// one while its node is down for a restart, and the node could not bind
/// it again.
pub fn free_port() -> u16 {
    use rand::Rng;
    // Never hand out a port twice in one test process: nodes of a cluster
    // pick their ports before any of them binds.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(20_000..32_000);
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// One node of a test cluster.
#[derive(Debug)]
pub struct Node {
    /// Node id.
    pub id: i32,
    /// Client port.
    pub client_port: u16,
    /// Controller port.
    pub controller_port: u16,
    /// Admin port.
    pub admin_port: u16,
    /// Kafka listener port (listening when [`ClusterOptions::kafka`] is set).
    pub kafka_port: u16,
    /// Data dir.
    pub data_dir: PathBuf,
    /// Started with `--roles broker`: not a controller voter.
    pub broker_only: bool,
    child: Option<Child>,
    starts: u32,
}

impl Node {
    /// `127.0.0.1:<client port>`.
    pub fn client_addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `127.0.0.1:<controller port>`.
    pub fn controller_addr(&self) -> String {
        format!("127.0.0.1:{}", self.controller_port)
    }

    /// `127.0.0.1:<Kafka listener port>`.
    pub fn kafka_addr(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    /// Path of the current log file.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.with_extension(format!("log.{}", self.starts))
    }

    /// Everything this node logged in all its runs.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .filter_map(|i| {
                std::fs::read_to_string(self.data_dir.with_extension(format!("log.{i}"))).ok()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether the process runs.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("node is running");
        Pid::from_raw(i32::try_from(child.id()).expect("pid fits"))
    }
}

/// Options of a test cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// `--set` settings for every node.
    pub settings: Vec<(String, String)>,
    /// A cgroup v2 directory: node `id` is started inside its existing
    /// child `node-<id>` (before `stromd` runs, so every socket it opens
    /// belongs to it), letting fault-injection tests match a node's
    /// traffic in nftables rules.
    pub cgroup: Option<PathBuf>,
    /// Broker-only nodes after the `n` combined ones (ids n+1..=n+k), so a
    /// test can stop brokers without touching the controller quorum.
    pub broker_only: i32,
    /// Environment variables of every node's process (e.g. `LD_PRELOAD`).
    pub env: Vec<(String, String)>,
    /// Every node serves the Kafka wire protocol on its `kafka_port`.
    pub kafka: bool,
    /// Put every node's data dir on a tmpfs of its own of this many bytes
    /// (needs root: the test sits in a `needs_root::` module), so each node
    /// has a file system whose use its heartbeats report on their own.
    pub tmpfs_data_dirs: Option<u64>,
}

impl ClusterOptions {
    /// Adds a setting.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// Adds an environment variable of every node's process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Turns the Kafka listener on (see [`ClusterOptions::kafka`]).
    pub fn kafka(mut self) -> Self {
        self.kafka = true;
        self
    }

    /// Puts every node's data dir on its own tmpfs of `bytes` (see
    /// [`ClusterOptions::tmpfs_data_dirs`]).
    pub fn tmpfs_data_dirs(mut self, bytes: u64) -> Self {
        self.tmpfs_data_dirs = Some(bytes);
        self
    }

    /// Adds `k` broker-only nodes (see [`ClusterOptions::broker_only`]).
    pub fn broker_only(mut self, k: i32) -> Self {
        self.broker_only = k;
        self
    }
}

/// Whether every thread of `pid` is stopped (`T`) or gone (`Z`, `X`), per
/// `/proc/<pid>/task/*/stat`.
fn all_threads_stopped(pid: Pid) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        // The state follows the parenthesised command name, which may
        // itself contain spaces or parentheses.
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.trim_start().chars().next()
            })
            .is_none_or(|state| matches!(state, 'T' | 't' | 'Z' | 'X'))
    })
}

/// A cluster of combined (controller + broker) nodes, ids 1..=n, and any
/// broker-only nodes after them ([`ClusterOptions::broker_only`]).
#[derive(Debug)]
pub struct Cluster {
    /// Nodes by id.
    pub nodes: BTreeMap<i32, Node>,
    voters: String,
    options: ClusterOptions,
    /// The data dirs' file systems ([`ClusterOptions::tmpfs_data_dirs`]),
    /// unmounted once the nodes are killed and before the temp dir goes.
    _tmpfs: Vec<tmpfs::Tmpfs>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// The cluster's temporary directory (the nodes' data dirs and logs
    /// are in it; tests may put their own files there too).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Starts `n` nodes and waits until the cluster is ready (a controller
    /// leader and every broker unfenced).
    pub async fn start(n: i32, options: ClusterOptions) -> Cluster {
        let mut cluster = Cluster::create(n, options);
        cluster.launch_all();
        cluster.wait_ready(Duration::from_secs(60)).await;
        cluster
    }

    /// Lays out `n` nodes (ports, data dir paths) without starting any, so
    /// a test can prepare their data dirs first; [`launch_all`](Self::launch_all)
    /// starts them. Panics, saying why, when the tmpfs of
    /// [`ClusterOptions::tmpfs_data_dirs`] cannot be mounted.
    pub fn create(n: i32, options: ClusterOptions) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("strom-it-")
            .tempdir()
            .expect("temp dir");
        let mut nodes = BTreeMap::new();
        for id in 1..=n + options.broker_only {
            nodes.insert(
                id,
                Node {
                    id,
                    client_port: free_port(),
                    controller_port: free_port(),
                    admin_port: free_port(),
                    kafka_port: free_port(),
                    data_dir: dir.path().join(format!("node-{id}")),
                    broker_only: id > n,
                    child: None,
                    starts: 0,
                },
            );
        }
        let voters = nodes
            .values()
            .filter(|n| !n.broker_only)
            .map(|n| format!("{}@{}", n.id, n.controller_addr()))
            .collect::<Vec<_>>()
            .join(",");
        let mut mounted = Vec::new();
        if let Some(bytes) = options.tmpfs_data_dirs {
            tmpfs::sweep_stale();
            for node in nodes.values() {
                match tmpfs::Tmpfs::mount(&node.data_dir, bytes) {
                    Ok(t) => mounted.push(t),
                    Err(e) => panic!("node {}'s data dir: {e:#}", node.id),
                }
            }
        }
        Cluster {
            nodes,
            voters,
            options,
            _tmpfs: mounted,
            _dir: dir,
        }
    }

    /// Starts nodes launched from now on inside `dir`'s `node-<id>`
    /// cgroups (see [`ClusterOptions::cgroup`]).
    pub fn set_cgroup(&mut self, dir: &std::path::Path) {
        self.options.cgroup = Some(dir.to_owned());
    }

    /// Starts every node that is not running.
    pub fn launch_all(&mut self) {
        let ids: Vec<i32> = self.nodes.keys().copied().collect();
        for id in ids {
            if !self.nodes.get_mut(&id).expect("node exists").is_running() {
                self.spawn(id);
            }
        }
    }

    /// Every node's Kafka listener, comma-separated (a Kafka client's
    /// `bootstrap.servers`).
    pub fn kafka_bootstrap(&self) -> String {
        self.nodes
            .values()
            .map(Node::kafka_addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The voters string.
    pub fn voters(&self) -> &str {
        &self.voters
    }

    /// Node `id`.
    pub fn node(&self, id: i32) -> &Node {
        &self.nodes[&id]
    }

    /// The command that starts node `id` (tests may add flags).
    pub fn command(&self, id: i32) -> Command {
        let node = &self.nodes[&id];
        let mut cmd = Command::new(binary("stromd", "STROMD_BIN"));
        cmd.arg("--node-id")
            .arg(id.to_string())
            .arg("--controller-quorum-voters")
            .arg(&self.voters)
            .arg("--listen")
            .arg(node.client_addr());
        if node.broker_only {
            cmd.args(["--roles", "broker"]);
        } else {
            cmd.arg("--controller-listen").arg(node.controller_addr());
        }
        cmd.arg("--admin-listen")
            .arg(format!("127.0.0.1:{}", node.admin_port))
            .arg("--data-dir")
            .arg(&node.data_dir)
            .env(
                "RUST_LOG",
                "info,openraft=warn,h2=warn,tower=warn,hyper=warn",
            )
            .env_remove("STROM_SET");
        if self.options.kafka {
            cmd.arg("--kafka-listen").arg(node.kafka_addr());
        }
        for (k, v) in &self.options.settings {
            cmd.arg("--set").arg(format!("{k}={v}"));
        }
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn spawn(&mut self, id: i32) {
        let mut cmd = self.command(id);
        if let Some(cgroup) = &self.options.cgroup {
            cmd = in_cgroup(&cmd, &cgroup.join(format!("node-{id}")));
        }
        let node = self.nodes.get_mut(&id).expect("node exists");
        node.starts += 1;
        let log = std::fs::File::create(node.log_path()).expect("create log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn stromd");
        node.child = Some(child);
    }

    /// kill -9 node `id` and reap it.
    pub fn kill(&mut self, id: i32) {
        let node = self.nodes.get_mut(&id).expect("node exists");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Process id of node `id` (running).
    pub fn pid(&self, id: i32) -> u32 {
        self.nodes[&id]
            .child
            .as_ref()
            .expect("node is running")
            .id()
    }

    /// SIGSTOP node `id`, returning once every thread of it has stopped.
    ///
    /// A process stops one thread at a time: SIGSTOP wakes one of its
    /// threads, which then stops the others, so a thread busy in a slow
    /// uninterruptible call (an fsync, a write stalled on memory) can hold
    /// the stop back while the other threads keep serving requests. Seen in
    /// CI: a "paused" leader appended writes sent after `kill` returned and
    /// its followers fetched them. Tests that send to a paused node rely on
    /// it being stopped.
    pub fn pause(&mut self, id: i32) {
        let pid = self.nodes[&id].pid();
        kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !all_threads_stopped(pid) {
            assert!(
                Instant::now() < deadline,
                "node {id} did not stop within 30 s of SIGSTOP"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGCONT node `id`.
    pub fn resume(&mut self, id: i32) {
        kill(self.nodes[&id].pid(), Signal::SIGCONT).expect("SIGCONT");
    }

    /// SIGTERM node `id` and wait (bounded) for it to exit.
    pub fn terminate(&mut self, id: i32, timeout: Duration) -> ExitStatus {
        kill(self.nodes[&id].pid(), Signal::SIGTERM).expect("SIGTERM");
        let node = self.nodes.get_mut(&id).expect("node exists");
        let mut child = node.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("node {id} did not exit within {timeout:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `id` again (same id, ports and data dir).
    pub fn restart(&mut self, id: i32) {
        self.kill(id);
        self.spawn(id);
    }

    /// Starts a stopped node.
    pub fn start_node(&mut self, id: i32) {
        assert!(
            !self.nodes.get_mut(&id).expect("node").is_running(),
            "node {id} is running"
        );
        self.spawn(id);
    }

    /// Ids of running nodes.
    pub fn running(&mut self) -> Vec<i32> {
        self.nodes
            .values_mut()
            .filter_map(|n| n.is_running().then_some(n.id))
            .collect()
    }

    /// Comma-separated client addresses of every node.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .values()
            .map(Node::client_addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A ControllerService client on node `id`'s client port.
    pub fn controller_client(&self, id: i32) -> ControllerServiceClient<Channel> {
        ControllerServiceClient::new(channel(&self.nodes[&id].client_addr()))
            .max_decoding_message_size(usize::MAX)
    }

    /// A MetadataService client on node `id`'s client port.
    pub fn metadata_client(&self, id: i32) -> MetadataServiceClient<Channel> {
        MetadataServiceClient::new(channel(&self.nodes[&id].client_addr()))
            .max_decoding_message_size(usize::MAX)
    }

    /// DescribeCluster through any running node.
    pub async fn describe(&self) -> Option<DescribeClusterResponse> {
        let ids: Vec<i32> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.child.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let mut c = self.controller_client(id);
            let mut req = tonic::Request::new(DescribeClusterRequest {});
            req.set_timeout(Duration::from_secs(3));
            if let Ok(r) = c.describe_cluster(req).await {
                return Some(r.into_inner());
            }
        }
        None
    }

    /// The active controller's id, if there is one.
    pub async fn controller_leader(&self) -> Option<i32> {
        let d = self.describe().await?;
        let leader = d.controller?.leader_id;
        (leader >= 0).then_some(leader)
    }

    /// Metadata from node `id`'s own image.
    pub async fn metadata(&self, id: i32, topics: &[&str]) -> Result<MetadataResponse, StromError> {
        let mut c = self.metadata_client(id);
        let mut req = tonic::Request::new(MetadataRequest {
            topics: topics.iter().map(|t| t.to_string()).collect(),
        });
        req.set_timeout(Duration::from_secs(3));
        c.metadata(req)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| StromError::from_status(&s))
    }

    /// Waits until every running broker is registered and unfenced and a
    /// controller leads.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let expected: Vec<i32> = self.running();
        let mut last = None;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(d) = self.describe().await {
                let leader_ok = d.controller.as_ref().is_some_and(|c| c.leader_id >= 0);
                let unfenced: Vec<i32> = d
                    .brokers
                    .iter()
                    .filter(|b| b.state == BrokerState::Unfenced as i32)
                    .map(|b| b.id)
                    .collect();
                if leader_ok
                    && expected.iter().all(|id| unfenced.contains(id))
                    && !d.cluster_id.is_empty()
                {
                    return;
                }
                last = Some(d);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "cluster not ready within {timeout:?}; last describe: {last:?}\n{}",
            self.dump_logs()
        );
    }

    /// The tail of every node's log, for failure messages.
    pub fn dump_logs(&self) -> String {
        let mut out = String::new();
        // STROM_TEST_LOG_LINES=N shows N lines per node, openraft included.
        let verbose_lines = std::env::var("STROM_TEST_LOG_LINES")
            .ok()
            .and_then(|v| v.parse::<usize>().ok());
        let verbose = verbose_lines.is_some();
        let lines = verbose_lines.unwrap_or(60);
        for n in self.nodes.values() {
            let logs = n.logs();
            // openraft repeats every failed replication to a stopped peer;
            // keep the lines that tell the story.
            let tail: Vec<&str> = logs
                .lines()
                .rev()
                .filter(|l| !l.contains("openraft::") || verbose)
                .take(lines)
                .collect();
            out.push_str(&format!("--- node {} log (last {lines} lines) ---\n", n.id));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Creates a topic through node `via`, retrying transient errors.
    pub async fn create_topic(
        &self,
        via: i32,
        name: &str,
        partitions: i32,
        rf: i32,
        configs: &[(&str, &str)],
    ) -> Result<CreateTopicResult, StromError> {
        let topic = CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            configs: config_map(configs),
            ..Default::default()
        };
        self.create_topic_as(via, topic).await
    }

    /// Creates topic `name` with partition `i` on the brokers `assignment[i]`
    /// (the first preferred).
    pub async fn create_topic_assigned(
        &self,
        via: i32,
        name: &str,
        assignment: &[&[i32]],
        configs: &[(&str, &str)],
    ) -> Result<CreateTopicResult, StromError> {
        let topic = CreatableTopic {
            name: name.into(),
            assignments: assignment
                .iter()
                .zip(0..)
                .map(|(replicas, partition)| ReplicaAssignment {
                    partition,
                    replicas: replicas.to_vec(),
                })
                .collect(),
            configs: config_map(configs),
            ..Default::default()
        };
        self.create_topic_as(via, topic).await
    }

    async fn create_topic_as(
        &self,
        via: i32,
        topic: CreatableTopic,
    ) -> Result<CreateTopicResult, StromError> {
        let req = CreateTopicsRequest {
            topics: vec![topic],
            validate_only: false,
        };
        let mut c = self.controller_client(via);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut r = tonic::Request::new(req.clone());
            r.set_timeout(Duration::from_secs(5));
            match c.create_topics(r).await {
                Ok(resp) => {
                    let t = resp
                        .into_inner()
                        .topics
                        .into_iter()
                        .next()
                        .expect("one result");
                    if t.error_code != ErrorCode::None as i32 {
                        let code = ErrorCode::try_from(t.error_code)
                            .unwrap_or(ErrorCode::UnknownServerError);
                        return Err(StromError::new(code, t.error_message));
                    }
                    return Ok(t);
                }
                Err(s) => {
                    let e = StromError::from_status(&s);
                    if !e.is_retriable() || Instant::now() > deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

fn config_map(configs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = kill(
                    Pid::from_raw(i32::try_from(child.id()).unwrap_or(0)),
                    Signal::SIGCONT,
                );
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `cmd` run by a shell that first moves itself into the cgroup `dir`, then
/// execs the program (same pid, environment and arguments).
fn in_cgroup(cmd: &Command, dir: &std::path::Path) -> Command {
    let mut wrapped = Command::new("sh");
    wrapped
        .arg("-c")
        .arg(r#"echo $$ > "$1/cgroup.procs" && shift && exec "$@""#)
        .arg("sh")
        .arg(dir)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

/// A lazily connecting channel to `addr`.
pub fn channel(addr: &str) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid address")
        .connect_timeout(Duration::from_millis(500))
        .connect_lazy()
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET path` on a node's HTTP admin endpoint (`127.0.0.1:port`): the
/// status code and body, or `None` when it does not answer.
pub fn admin_get(port: u16, path: &str) -> Option<(u16, String)> {
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
