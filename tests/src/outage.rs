//! Services a test can take down and bring back, so that stopping them disturbs no other test:
//! [`PgCluster`], a plaintext PostgreSQL cluster of the test's own (from the server binaries
//! `HUBBUB_TEST_PG_BIN`, as [`crate::tls_postgres`] finds them), which can be stopped (as a
//! crash: `pg_ctl -m immediate`) and started again on the same port and data; and [`Moto`], a
//! DynamoDB-compatible server of the test's own (moto), which can be paused and resumed with
//! SIGSTOP/SIGCONT. moto keeps its tables in memory and loses them when it exits, which real
//! DynamoDB never does, so its outage is a pause: an unresponsive DynamoDB, as a network
//! partition makes it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tls_postgres::{cluster_dirs, free_port, is_root, pg_bin, run_pg};

/// How long a service may take to come up: moto imports its whole botocore model on start,
/// which takes seconds on a loaded two-core machine.
const START_WAIT: Duration = Duration::from_secs(60);

/// A PostgreSQL cluster of the test's own, trusting local TCP connections.
pub struct PgCluster {
    pub port: u16,
    dir: PathBuf,
    pg_bin: PathBuf,
}

impl PgCluster {
    /// Creates the cluster and starts it on a free loopback port.
    pub fn start() -> Self {
        let pg_bin = pg_bin();
        let (dir, data) = cluster_dirs("hubbub-pg");
        let data_s = data.to_string_lossy().into_owned();
        run_pg(
            &pg_bin.join("initdb"),
            &["-D", &data_s, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        let me = Self {
            port: free_port(),
            dir,
            pg_bin,
        };
        me.start_again();
        me
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    /// The superuser's URL over TCP.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash does: every connection is cut.
    pub fn stop(&self) {
        run_pg(
            &self.pg_bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "stop"],
        );
    }

    /// Starts the server (again) on the same port and data, and waits until it accepts.
    pub fn start_again(&self) {
        let data = self.data();
        let opts = format!(
            "-p {} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port
        );
        run_pg(
            &self.pg_bin.join("pg_ctl"),
            &[
                "-D",
                &data,
                "-l",
                &format!("{data}/server.log"),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let pg_ctl = self.pg_bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .args(args)
                .output()
        } else {
            Command::new(&pg_ctl).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// moto's server: `HUBBUB_TEST_MOTO_SERVER` (scripts/test sets it), else the copy scripts/test
/// installs into `.tools/`.
fn moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("HUBBUB_TEST_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let installed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/moto/bin/moto_server");
    assert!(
        installed.exists(),
        "no moto server: set HUBBUB_TEST_MOTO_SERVER or run scripts/test (which installs it into .tools/)"
    );
    installed
}

/// A moto server of the test's own on a free loopback port.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    /// Starts moto and waits until it answers.
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let me = Self { port, child };
        let deadline = Instant::now() + START_WAIT;
        while !me.answers() {
            assert!(
                Instant::now() < deadline,
                "moto did not come up on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether `GET /moto-api/` answers 200.
    fn answers(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} moto");
    }

    /// Freezes the process: connections are accepted by the kernel but never answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets it run again.
    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
