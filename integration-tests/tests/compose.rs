//! End to end on Docker: the image built by `deploy/docker/build-local-image.sh`
//! from this build's binaries, the three-node cluster of
//! `deploy/compose/docker-compose.yml`, and the faults an operator meets —
//! the partition leader's container killed, a node cut off the network and
//! reconnected, a node restarted — with every acknowledged record checked at
//! the end.
//!
//! Needs a Docker engine and docker-compose (or `docker compose`): the test
//! sits in module `needs_docker`, which `scripts/test` skips by name
//! (`--skip needs_docker::`, reported as skipped with the reason) where
//! `docker info` or both compose commands fail. Run elsewhere without them,
//! it fails with the reason rather than passing without running.
//!
//! Bounded in time: every command has a timeout and a watchdog tears the
//! project down and aborts if the whole test runs too long. The project
//! (containers, network, volumes) and the image are removed at the end,
//! also on failure; projects left by a test process that died are reaped at
//! the next start.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use strom_integration_tests::binary;

/// Every project this test creates starts with this.
const PROJECT_PREFIX: &str = "stromit";
/// The whole test, after which the watchdog cleans up and aborts.
const TEST_BUDGET: Duration = Duration::from_secs(240);
/// Any one docker command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const BOOTSTRAP: &str = "strom-1:9092,strom-2:9092,strom-3:9092";
const TOPIC: &str = "e2e";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs a command with `stdin`, killing it after `timeout`.
fn run(cmd: &mut Command, stdin: Option<&str>, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let input = input.to_owned();
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let mut stderr = err_reader.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {timeout:?}: {what})"));
    }
    Output {
        ok: status.is_some_and(|s| s.success()),
        stdout,
        stderr,
    }
}

fn docker(args: &[&str]) -> Output {
    run(Command::new("docker").args(args), None, COMMAND_TIMEOUT)
}

/// `docker-compose` (v1) or `docker compose` (v2), whichever works.
fn compose_command() -> Option<Vec<String>> {
    for candidate in [vec!["docker-compose"], vec!["docker", "compose"]] {
        let mut cmd = Command::new(candidate[0]);
        cmd.args(&candidate[1..]).arg("version");
        if run(&mut cmd, None, Duration::from_secs(20)).ok {
            return Some(candidate.into_iter().map(str::to_owned).collect());
        }
    }
    None
}

/// Removes the containers, networks and volumes of projects left behind by
/// earlier runs whose test process no longer exists.
fn reap_stale_projects(compose: &[String]) {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=com.docker.compose.project",
        "--format",
        "{{.Label \"com.docker.compose.project\"}}",
    ]);
    let mut projects: Vec<String> = out
        .stdout
        .lines()
        .filter(|p| p.starts_with(PROJECT_PREFIX))
        .map(str::to_owned)
        .collect();
    let vols = docker(&["volume", "ls", "-q"]);
    projects.extend(
        vols.stdout
            .lines()
            .filter(|v| v.starts_with(PROJECT_PREFIX))
            .filter_map(|v| v.split_once('_').map(|(p, _)| p.to_owned())),
    );
    projects.sort();
    projects.dedup();
    for p in projects {
        // stromit<pid>x<nanos>
        let pid = p
            .strip_prefix(PROJECT_PREFIX)
            .and_then(|rest| rest.split_once('x'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
            continue;
        }
        eprintln!("reaping compose project {p} left by a test process that died");
        let project = Project::for_name(compose.to_vec(), p.clone(), String::new());
        project.down();
    }
}

/// One compose project: the cluster under test.
struct Project {
    compose: Vec<String>,
    name: String,
    file: PathBuf,
    env: Vec<(String, String)>,
    image: String,
}

impl Project {
    fn for_name(compose: Vec<String>, name: String, image: String) -> Self {
        let mut env = vec![
            ("STROM_IMAGE".to_owned(), image.clone()),
            (
                "STROM_SET".to_owned(),
                "broker.session.timeout.ms=3000;broker.heartbeat.interval.ms=500;\
                 replica.lag.time.max.ms=5000;controlled.shutdown.timeout.ms=10000"
                    .to_owned(),
            ),
        ];
        // Any free host port: no clash with other runs or services.
        for n in 1..=3 {
            for port in ["CLIENT", "KAFKA", "ADMIN"] {
                env.push((format!("STROM_{n}_{port}_PORT"), "127.0.0.1:0".to_owned()));
            }
        }
        Self {
            compose,
            name,
            file: repo_root().join("deploy/compose/docker-compose.yml"),
            env,
            image,
        }
    }

    fn compose(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new(&self.compose[0]);
        cmd.args(&self.compose[1..])
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(&self.file)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        run(&mut cmd, None, timeout)
    }

    fn down(&self) {
        // The data is thrown away: no need to wait for graceful shutdowns.
        self.compose(&["kill"], COMMAND_TIMEOUT);
        let out = self.compose(
            &["down", "-v", "--remove-orphans", "-t", "5"],
            Duration::from_secs(120),
        );
        if !out.ok {
            eprintln!("compose down failed: {}", out.stderr);
        }
        // Whatever `down` could not remove (e.g. after a failed up).
        let label = format!("label=com.docker.compose.project={}", self.name);
        for id in docker(&["ps", "-aq", "--filter", &label]).stdout.lines() {
            docker(&["rm", "-f", "-v", id]);
        }
        for net in docker(&["network", "ls", "-q", "--filter", &label])
            .stdout
            .lines()
        {
            docker(&["network", "rm", net]);
        }
        for vol in docker(&["volume", "ls", "-q", "--filter", &label])
            .stdout
            .lines()
        {
            docker(&["volume", "rm", "-f", vol]);
        }
    }

    /// Container id of service `strom-<id>`.
    fn container(&self, id: i64) -> String {
        let out = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service=strom-{id}"),
        ]);
        let c = out.stdout.trim().to_owned();
        assert!(!c.is_empty(), "no container for strom-{id}: {}", out.stderr);
        c
    }

    fn network(&self) -> String {
        format!("{}_default", self.name)
    }

    /// Runs `strom` in the container of node `via` (which must be up).
    fn strom(&self, via: i64, args: &[&str], stdin: Option<&str>) -> Output {
        let container = self.container(via);
        let mut cmd = Command::new("docker");
        cmd.arg("exec");
        if stdin.is_some() {
            cmd.arg("-i");
        }
        cmd.arg(&container)
            .arg("strom")
            .arg("--bootstrap-server")
            .arg(BOOTSTRAP)
            .arg("--output")
            .arg("json")
            .args(args);
        run(&mut cmd, stdin, COMMAND_TIMEOUT)
    }

    /// `host:port` the admin port of node `id` is published on.
    fn admin_address(&self, id: i64) -> String {
        let out = docker(&["port", &self.container(id), "9644/tcp"]);
        let addr = out
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        assert!(
            !addr.is_empty(),
            "admin port of strom-{id} published: {}",
            out.stderr
        );
        addr
    }

    /// The last lines each node logged, without openraft's per-RPC
    /// retry warnings (which would crowd out everything else while a node
    /// is down or cut off).
    fn logs(&self) -> String {
        const LINES_PER_NODE: usize = 40;
        let out = self.compose(&["logs", "--no-color", "--tail", "400"], COMMAND_TIMEOUT);
        let mut per_node: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for line in out.stdout.lines() {
            if line.contains("openraft::") {
                continue;
            }
            let node = line.split_once('|').map_or("", |(n, _)| n.trim());
            per_node.entry(node.to_owned()).or_default().push(line);
        }
        let mut text = String::new();
        for lines in per_node.values() {
            for line in &lines[lines.len().saturating_sub(LINES_PER_NODE)..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        text + &out.stderr
    }
}

/// Tears the project down and removes the image when dropped, however the
/// test ends.
struct Guard {
    project: Arc<Project>,
    done: Arc<AtomicBool>,
}

impl Guard {
    fn finish(&self) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        if std::thread::panicking() {
            eprintln!("--- compose logs ---\n{}", self.project.logs());
        }
        self.project.down();
        docker(&["rmi", "-f", &self.project.image]);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A metric's value on node `id`, scraped through its published admin port.
fn metric(p: &Project, id: i64, name: &str) -> Option<f64> {
    let mut s = std::net::TcpStream::connect(p.admin_address(id)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let value = body
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok());
    seen(format!("{name} on node {id}: {value:?}"));
    value
}

/// The cluster as node `via` describes it, when it answers.
fn describe(p: &Project, via: i64) -> Option<Value> {
    let out = p.strom(via, &["cluster", "describe"], None);
    if !out.ok {
        seen(format!(
            "cluster describe via {via} failed: {}",
            out.stderr.trim()
        ));
        return None;
    }
    let v: Option<Value> = serde_json::from_str(out.stdout.trim()).ok();
    seen(format!("cluster via {via}: {}", out.stdout.trim()));
    v
}

/// `(leader, isr)` of the test partition as node `via` sees it.
fn partition(p: &Project, via: i64) -> Option<(i64, Vec<i64>)> {
    let out = p.strom(via, &["topics", "describe", "--topic", TOPIC], None);
    if !out.ok {
        seen(format!(
            "topics describe via {via} failed: {}",
            out.stderr.trim()
        ));
        return None;
    }
    seen(format!("topic via {via}: {}", out.stdout.trim()));
    let v: Value = serde_json::from_str(out.stdout.trim()).ok()?;
    let part = &v[0]["partitions"][0];
    let leader = part["leader"].as_i64().unwrap_or(-1);
    let isr = part["isr"]
        .as_array()?
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    Some((leader, isr))
}

thread_local! {
    /// What the last `describe`/`partition` call saw, for timeout messages.
    static LAST_SEEN: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn seen(what: String) {
    LAST_SEEN.with(|s| *s.borrow_mut() = what);
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    seen(String::new());
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}; last seen: {}",
            LAST_SEEN.with(|s| s.borrow().clone())
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until every broker is unfenced and the partition's ISR holds all
/// three replicas, asking node `via`.
fn wait_healthy(p: &Project, via: i64, what: &str) -> i64 {
    wait_for(what, Duration::from_secs(60), || {
        let d = describe(p, via)?;
        let leader_known = d["controller"]["leader_id"].as_i64().is_some();
        let unfenced = d["brokers"]
            .as_array()?
            .iter()
            .filter(|b| b["state"] == "unfenced")
            .count();
        let (leader, isr) = partition(p, via)?;
        (leader_known && unfenced == 3 && isr.len() == 3 && leader > 0).then_some(leader)
    })
}

/// Produces `count` records named `<label>-<i>` with acks=all through node
/// `via`; every one must be acknowledged. Returns `value → offset`.
fn produce(p: &Project, via: i64, label: &str, count: usize) -> BTreeMap<String, i64> {
    let input: String = (0..count).map(|i| format!("{label}-{i}\n")).collect();
    let out = p.strom(
        via,
        &["produce", "--topic", TOPIC, "--acks", "all"],
        Some(&input),
    );
    assert!(out.ok, "produce {label} failed: {}", out.stderr);
    let mut acked = BTreeMap::new();
    for line in out.stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("produce JSON line");
        let (Some(value), Some(offset)) = (v["value"].as_str(), v["offset"].as_i64()) else {
            panic!("record not acknowledged: {line}");
        };
        acked.insert(value.to_owned(), offset);
    }
    assert_eq!(acked.len(), count, "every {label} record acknowledged");
    acked
}

/// Every acknowledged record is in the log at its offset.
fn check_no_loss(p: &Project, via: i64, acked: &BTreeMap<String, i64>) {
    let out = p.strom(
        via,
        &[
            "consume",
            "--topic",
            TOPIC,
            "--from-beginning",
            "--timeout-ms",
            "3000",
        ],
        None,
    );
    assert!(out.ok, "consume failed: {}", out.stderr);
    let mut log = BTreeMap::new();
    for line in out.stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("consume JSON line");
        let offset = v["offset"].as_i64().expect("offset");
        let value = v["value"].as_str().unwrap_or_default().to_owned();
        assert!(
            log.insert(offset, value).is_none(),
            "offset {offset} read twice"
        );
    }
    let lost: Vec<String> = acked
        .iter()
        .filter(|(value, offset)| log.get(offset) != Some(*value))
        .map(|(value, offset)| format!("{value}@{offset} (log has {:?})", log.get(offset)))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost or changed: {lost:?}",
        lost.len()
    );
}

fn other_than(ids: &[i64]) -> i64 {
    (1..=3)
        .find(|id| !ids.contains(id))
        .expect("a node not excluded")
}

/// Tests that need a Docker engine: runners leave this module out by name
/// where there is none.
mod needs_docker {
    #[test]
    fn compose_cluster_survives_leader_kill_network_partition_and_restart() {
        super::compose_end_to_end();
    }
}

fn compose_end_to_end() {
    let info = run(
        Command::new("docker").arg("info"),
        None,
        Duration::from_secs(20),
    );
    assert!(
        info.ok,
        "this test needs a Docker engine, and `docker info` failed: {}\n\
         (scripts/test skips needs_docker:: tests where that is so)",
        info.stderr.trim()
    );
    let compose = compose_command().expect(
        "this test needs docker-compose or `docker compose`, and neither works \
         (scripts/test skips needs_docker:: tests where that is so)",
    );
    let started = Instant::now();
    reap_stale_projects(&compose);

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("{PROJECT_PREFIX}{}x{nanos}", std::process::id());
    let image = format!("strom-it:{name}");
    let project = Arc::new(Project::for_name(compose, name, image));
    let guard = Guard {
        project: project.clone(),
        done: Arc::new(AtomicBool::new(false)),
    };
    {
        // The watchdog: past the budget, clean up and abort (a test runner
        // killing us would skip the Drop guard).
        let project = project.clone();
        let done = guard.done.clone();
        std::thread::spawn(move || {
            while started.elapsed() < TEST_BUDGET {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            if !done.swap(true, Ordering::SeqCst) {
                eprintln!("compose test exceeded {TEST_BUDGET:?}; tearing down and aborting");
                eprintln!("--- compose logs ---\n{}", project.logs());
                project.down();
                docker(&["rmi", "-f", &project.image]);
                std::process::abort();
            }
        });
    }
    let p = &*project;
    let current_step = std::sync::Mutex::new(String::from("start"));
    let step = |what: &str| {
        eprintln!("[{:>5.1}s] {what}", started.elapsed().as_secs_f64());
        if let Ok(mut s) = current_step.lock() {
            *s = what.to_owned();
        }
    };
    // The failure is reported after the nodes' logs, so that it is the
    // last thing printed and not buried under them.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(p, &step)));
    if let Err(payload) = outcome {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(non-string panic)")
            .to_owned();
        eprintln!(
            "--- compose logs (openraft lines left out) ---\n{}",
            p.logs()
        );
        guard.finish();
        let at = current_step.lock().map(|s| s.clone()).unwrap_or_default();
        panic!(
            "compose scenario failed at step {at:?} after {:.1}s: {message}",
            started.elapsed().as_secs_f64()
        );
    }

    step("tear down");
    guard.finish();
    let label = format!("label=com.docker.compose.project={}", p.name);
    let left = [
        docker(&["ps", "-aq", "--filter", &label]).stdout,
        docker(&["network", "ls", "-q", "--filter", &label]).stdout,
        docker(&["volume", "ls", "-q", "--filter", &label]).stdout,
    ];
    assert!(
        left.iter().all(|s| s.trim().is_empty()),
        "nothing left behind: {left:?}"
    );
    step("done");
}

/// The scenario proper: build, start, then kill, cut off and restart nodes
/// while producing with acks=all, checking every acknowledged record.
fn scenario(p: &Project, step: &dyn Fn(&str)) {
    step("build the image from this build's binaries");
    let bin_dir = binary("stromd", "STROMD_BIN")
        .parent()
        .expect("binary dir")
        .to_path_buf();
    let built = run(
        Command::new(repo_root().join("deploy/docker/build-local-image.sh"))
            .arg("--tag")
            .arg(&p.image)
            .arg("--bin-dir")
            .arg(&bin_dir),
        None,
        Duration::from_secs(180),
    );
    assert!(built.ok, "image build failed: {}", built.stderr);

    step("start the cluster");
    let up = p.compose(&["up", "-d"], Duration::from_secs(120));
    assert!(up.ok, "compose up failed: {}", up.stderr);
    wait_for(
        "a controller leader and three unfenced brokers",
        Duration::from_secs(60),
        || {
            let d = describe(p, 1)?;
            let unfenced = d["brokers"]
                .as_array()?
                .iter()
                .filter(|b| b["state"] == "unfenced")
                .count();
            (d["controller"]["leader_id"].as_i64().is_some() && unfenced == 3).then_some(())
        },
    );
    let created = p.strom(
        1,
        &[
            "topics",
            "create",
            "--topic",
            TOPIC,
            "--partitions",
            "1",
            "--replication-factor",
            "3",
            "--config",
            "min.insync.replicas=2",
        ],
        None,
    );
    assert!(created.ok, "create topic: {}", created.stderr);
    let leader = wait_healthy(p, 1, "the new partition has a leader and a full ISR");

    step("produce and consume");
    let mut acked = produce(p, 1, "first", 200);
    check_no_loss(p, 2, &acked);

    step(&format!("docker kill the partition leader (node {leader})"));
    let victim = p.container(leader);
    assert!(docker(&["kill", &victim]).ok, "docker kill");
    let survivor = other_than(&[leader]);
    let new_leader = wait_for(
        "a new leader after the kill",
        Duration::from_secs(30),
        || {
            let (l, isr) = partition(p, survivor)?;
            (l > 0 && l != leader && isr.len() == 2).then_some(l)
        },
    );
    // The new leader's metrics, on its published admin port, show the
    // partition under-replicated.
    wait_for(
        "under-replicated gauge at 1",
        Duration::from_secs(10),
        || (metric(p, new_leader, "strom_partitions_under_replicated")? == 1.0).then_some(()),
    );
    acked.extend(produce(p, survivor, "after-kill", 200));
    check_no_loss(p, survivor, &acked);
    assert!(docker(&["start", &victim]).ok, "docker start");
    // The leadership may move back to the returning node (preferred-leader
    // rebalancing), so the current leader is asked afresh.
    let new_leader = wait_healthy(p, survivor, "the killed node rejoins the ISR");

    // Cut off the current leader: the others fence it and elect a new one;
    // writes go on; once reconnected it follows again and catches up.
    step(&format!("disconnect node {new_leader} from the network"));
    let cut = p.container(new_leader);
    let network = p.network();
    let out = docker(&["network", "disconnect", &network, &cut]);
    assert!(out.ok, "network disconnect: {}", out.stderr);
    let survivor = other_than(&[new_leader]);
    wait_for(
        "a leader other than the cut-off node",
        Duration::from_secs(30),
        || {
            let (l, isr) = partition(p, survivor)?;
            (l > 0 && l != new_leader && !isr.contains(&new_leader)).then_some(())
        },
    );
    acked.extend(produce(p, survivor, "during-partition", 100));
    let alias = format!("strom-{new_leader}");
    let out = docker(&["network", "connect", "--alias", &alias, &network, &cut]);
    assert!(out.ok, "network connect: {}", out.stderr);
    wait_healthy(p, survivor, "the reconnected node rejoins the ISR");
    check_no_loss(p, new_leader, &acked);

    // A graceful restart (SIGTERM: controlled shutdown, then start).
    let (leader, _) = partition(p, survivor).expect("partition state");
    step(&format!("restart node {leader}"));
    let out = docker(&["restart", "-t", "30", &p.container(leader)]);
    assert!(out.ok, "docker restart: {}", out.stderr);
    let via = other_than(&[leader]);
    wait_healthy(p, via, "the restarted node rejoins the ISR");
    let (leader_now, _) = partition(p, via).expect("partition state");
    wait_for(
        "under-replicated gauge back at 0",
        Duration::from_secs(10),
        || (metric(p, leader_now, "strom_partitions_under_replicated")? == 0.0).then_some(()),
    );
    acked.extend(produce(p, via, "after-restart", 100));
    check_no_loss(p, leader, &acked);
    assert_eq!(acked.len(), 600);
}
