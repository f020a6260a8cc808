//! A throwaway Redis Cluster: six `redis-server --cluster-enabled yes` processes on free
//! loopback ports (three masters, three replicas, made by `redis-cli --cluster create`),
//! a short node timeout so a failover takes a second or two, all killed on drop.

use crate::process::Process;
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// A running cluster.
pub struct RedisCluster {
    nodes: Vec<(u16, Option<Process>)>,
    _dir: TempDir,
}

/// A port that is free and whose cluster bus port (+10000) is free too, neither given to
/// anyone else in this process. The clusters of parallel tests must not share a port: a
/// node of one answering for a node of another joins the two clusters (seen: a failover
/// that never finished, two replicas of one master splitting the votes for 20 s).
fn cluster_port() -> u16 {
    let free = |port: u16| {
        TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok()
    };
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding an ephemeral port");
        if port < 50000 && free(port) && crate::claim_ports(&[port, port + 10000]) {
            return port;
        }
        // Ephemeral ports are often above 50000 here: try a low range at random.
        let guess = 20000 + (std::process::id() as u16 ^ port) % 20000;
        if free(guess) && crate::claim_ports(&[guess, guess + 10000]) {
            return guess;
        }
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RedisCluster {
    /// Starts six nodes, makes them a cluster, waits until every node reports
    /// `cluster_state:ok`.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sluice-redis-cluster-")
            .tempdir()
            .expect("tempdir");
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 6 {
            let p = cluster_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let nodes = ports
            .iter()
            .map(|&port| {
                let node_dir = dir.path().join(port.to_string());
                std::fs::create_dir_all(&node_dir).expect("node dir");
                let mut cmd = Command::new("redis-server");
                cmd.args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "1000",
                    // A replica may take over however long since it last heard from its
                    // master (the default refuses after ~10 node timeouts of silence,
                    // which an idle test cluster always reaches).
                    "--cluster-replica-validity-factor",
                    "0",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&node_dir);
                let log = node_dir.join("redis.log");
                (port, Some(Process::spawn("redis-server", cmd, &log)))
            })
            .collect();
        for &port in &ports {
            assert!(
                crate::eventually(Duration::from_secs(10), || cli(port, &["PING"]).trim()
                    == "PONG"),
                "cluster node {port} did not answer PING"
            );
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes, _dir: dir };
        assert!(
            crate::eventually(Duration::from_secs(20), || cluster.is_ok()),
            "the cluster never reported cluster_state:ok"
        );
        cluster
    }

    /// Whether every live node says `cluster_state:ok`.
    pub fn is_ok(&self) -> bool {
        self.nodes
            .iter()
            .filter(|(_, p)| p.is_some())
            .all(|(port, _)| cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    }

    /// `redis://127.0.0.1:PORT` of every node (the seed list).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(port, _)| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// The ports of the current masters.
    pub fn masters(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|(_, p)| p.is_some())
            .filter(|(port, _)| cli(*port, &["ROLE"]).starts_with("master"))
            .map(|(port, _)| *port)
            .collect()
    }

    /// The master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot: u16 = cli(self.nodes[0].0, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("a slot");
        for port in self.masters() {
            let nodes = cli(port, &["CLUSTER", "NODES"]);
            for line in nodes.lines().filter(|l| l.contains("myself")) {
                for range in line.split(' ').skip(8) {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                        if (a..=b).contains(&slot) {
                            return port;
                        }
                    }
                }
            }
        }
        panic!("no master serves slot {slot} of {key}");
    }

    /// Waits until every replica's replication offset has reached its master's.
    pub fn wait_replicated(&self) {
        let offset = |port: u16, field: &str| -> Option<i64> {
            cli(port, &["INFO", "replication"])
                .lines()
                .find_map(|l| l.strip_prefix(field)?.trim().parse().ok())
        };
        let caught_up = || {
            self.masters().into_iter().all(|m| {
                let Some(master) = offset(m, "master_repl_offset:") else {
                    return false;
                };
                // slave0:ip=…,port=…,state=online,offset=N,lag=…
                cli(m, &["INFO", "replication"])
                    .lines()
                    .filter(|l| l.starts_with("slave"))
                    .all(|l| {
                        l.split(',')
                            .find_map(|kv| kv.strip_prefix("offset="))
                            .and_then(|v| v.parse::<i64>().ok())
                            .is_some_and(|o| o >= master)
                    })
            })
        };
        assert!(
            crate::eventually(Duration::from_secs(10), caught_up),
            "the replicas never caught up with their masters"
        );
    }

    /// Kills the node on `port` (SIGKILL, as a crash would).
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|(p, _)| *p == port) {
            node.1 = None;
        }
    }
}
