//! A PostgreSQL cluster of its own that accepts TLS connections only (`hostssl` lines alone in
//! `pg_hba.conf`, passwords checked with scram-sha-256), with a server certificate for
//! `localhost` signed by a throwaway certificate authority made here with rcgen; as RDS for
//! PostgreSQL 15+ behaves (`rds.force_ssl`).
//!
//! Each [`TlsPostgres`] runs `initdb` and `pg_ctl` from the PostgreSQL server binaries
//! (`HUBBUB_TEST_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`), as the `postgres` user
//! when the tests run as root (initdb refuses root), on a free loopback port, and stops and
//! removes the cluster when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The password of the cluster's `postgres` superuser (a throwaway cluster on loopback).
pub const PASSWORD: &str = "tls-test-password";

/// A throwaway certificate authority, written to `ca.pem` in the cluster's directory.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate (PEM).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate and key (PEM) for `names`, signed by this CA.
    pub fn server_cert(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).expect("server params");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        (cert.pem(), key.serialize_pem())
    }
}

/// A running TLS-only PostgreSQL cluster.
pub struct TlsPostgres {
    /// Its loopback port.
    pub port: u16,
    dir: PathBuf,
    pg_bin: PathBuf,
}

pub(crate) fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("HUBBUB_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("no PostgreSQL server binaries: set HUBBUB_TEST_PG_BIN (scripts/test does)")
    })
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as `postgres` when we are root.
pub(crate) fn run_pg(bin: &Path, args: &[&str]) {
    let out = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin)
            .args(args)
            .output()
    } else {
        Command::new(bin).args(args).output()
    }
    .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}{}",
        bin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a file the server reads: owned by `postgres` with `mode` when we are root.
fn install_file(path: &Path, contents: &str, mode: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, contents).expect("write staged file");
    let mut cmd = Command::new("install");
    if is_root() {
        cmd.args(["-o", "postgres", "-g", "postgres"]);
    }
    let status = cmd
        .args(["-m", mode])
        .arg(&staged)
        .arg(path)
        .status()
        .expect("install");
    assert!(status.success(), "install {}", path.display());
    std::fs::remove_file(&staged).expect("remove staged file");
}

/// A new cluster's directory under the temp dir (`{prefix}-{uuid}`) and its data directory
/// inside, owned by `postgres` when we are root (initdb refuses root) and reachable by it.
pub(crate) fn cluster_dirs(prefix: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("cluster dir");
    // The postgres user must reach the data directory inside.
    let status = Command::new("chmod")
        .arg("755")
        .arg(&dir)
        .status()
        .expect("chmod");
    assert!(status.success());
    let data = dir.join("data");
    let mut install = Command::new("install");
    if is_root() {
        install.args(["-o", "postgres", "-g", "postgres"]);
    }
    assert!(
        install
            .args(["-d", "-m", "700"])
            .arg(&data)
            .status()
            .expect("install -d")
            .success()
    );
    (dir, data)
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl TlsPostgres {
    /// Starts a cluster whose server certificate (for `localhost` only) is signed by `ca`.
    pub fn start(ca: &TestCa) -> Self {
        let pg_bin = pg_bin();
        let (dir, data) = cluster_dirs("hubbub-tlspg");
        let pwfile = dir.join("pwfile");
        install_file(&pwfile, PASSWORD, "644");
        let data_s = data.to_string_lossy().into_owned();
        run_pg(
            &pg_bin.join("initdb"),
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--pwfile",
                &pwfile.to_string_lossy(),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ],
        );
        // TLS or nothing over TCP: no `host` line, so a plaintext attempt finds no entry.
        install_file(
            &data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostssl all all ::1/128 scram-sha-256\n",
            "600",
        );
        let (cert, key) = ca.server_cert(&["localhost"]);
        install_file(&data.join("server.crt"), &cert, "600");
        install_file(&data.join("server.key"), &key, "600");
        let me = Self {
            port: free_port(),
            dir,
            pg_bin,
        };
        let opts = format!(
            "-p {} -k {data_s} -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on \
             -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c max_connections=20",
            me.port
        );
        run_pg(
            &me.pg_bin.join("pg_ctl"),
            &[
                "-D",
                &data_s,
                "-l",
                &data.join("server.log").to_string_lossy(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
        me
    }

    /// A URL for the superuser over TCP to `host` (`localhost` matches the certificate,
    /// `127.0.0.1` does not), with `params` as the query string.
    pub fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres?{params}",
            self.port
        )
    }

    /// A plaintext superuser connection over the Unix socket (trusted), to set things up.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(self.dir.join("data"))
            .port(self.port)
            .user("postgres")
            .dbname("postgres");
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .expect("admin connection over the socket");
        tokio::spawn(conn);
        client
    }

    /// Writes `pem` into the cluster's directory; returns its path (for `sslrootcert`).
    pub fn write_pem(&self, name: &str, pem: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let pg_ctl = self.pg_bin.join("pg_ctl");
        let args = ["-D", &*data.to_string_lossy(), "-m", "immediate", "stop"];
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
