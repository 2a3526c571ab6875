//! Two `stella-operator run` processes against the real API server harness: one leads, the
//! other stands by; kill the leader and the standby takes over within the lease duration;
//! SIGTERM releases the lease for an immediate handover. Health, readiness and metrics are
//! served throughout.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Operator {
    child: Child,
    port: u16,
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(kubeconfig: &std::path::Path, namespace: &str, identity: &str) -> Operator {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_stella-operator"))
        .args(["run", "--lease-duration", "3", "--log-json"])
        .args(["--namespace", namespace, "--identity", identity])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Operator { child, port }
}

/// `GET path` → (status, body); `None` while the server is not up.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let status = reply.get(9..12)?.parse().ok()?;
    Some((status, reply.split_once("\r\n\r\n")?.1.to_string()))
}

fn leading(op: &Operator) -> Option<bool> {
    let (_, body) = get(op.port, "/metrics")?;
    let line = body
        .lines()
        .find(|l| l.starts_with("stella_operator_leader{"))?;
    Some(line.ends_with(" 1"))
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

#[test]
fn a_standby_takes_over_when_the_leader_dies_or_stops() {
    let cluster = match stella_e2e::TestCluster::shared() {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "test cluster required: {e}"
            );
            eprintln!("SKIPPED: no test cluster: {e}");
            return;
        }
    };
    let namespace = format!("op-{:x}", std::process::id());
    let status = cluster
        .kubectl()
        .args(["create", "namespace", &namespace])
        .status()
        .unwrap();
    assert!(status.success());
    let a = start(cluster.kubeconfig(), &namespace, "operator-a");
    wait_until("a to lead", Duration::from_secs(20), || {
        leading(&a) == Some(true)
    });
    let b = start(cluster.kubeconfig(), &namespace, "operator-b");
    wait_until("b to serve", Duration::from_secs(20), || {
        get(b.port, "/readyz").is_some_and(|(s, _)| s == 200)
    });
    assert_eq!(get(b.port, "/healthz"), Some((200, "ok".into())));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(leading(&b), Some(false), "b must stand by while a leads");
    assert_eq!(leading(&a), Some(true));

    // Kill the leader (no release): b takes over once the 3 s lease has expired.
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let took = wait_until("b to take over", Duration::from_secs(15), || {
        leading(&b) == Some(true)
    });
    assert!(took < Duration::from_secs(3 + 2), "takeover took {took:?}");

    // SIGTERM releases: a new standby c takes over well before the lease would expire.
    let c = start(cluster.kubeconfig(), &namespace, "operator-c");
    wait_until("c to serve", Duration::from_secs(20), || {
        leading(&c) == Some(false)
    });
    let term = Command::new("kill")
        .args(["-TERM", &b.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut b = b;
    let exit = b.child.wait().unwrap();
    assert!(exit.success(), "SIGTERM is a clean exit: {exit:?}");
    wait_until("c to take over", Duration::from_secs(10), || {
        leading(&c) == Some(true)
    });
    let _ = cluster
        .kubectl()
        .args(["delete", "namespace", &namespace, "--wait=false"])
        .status();
}
