//! Which PostgreSQL and Redis the tests use, decided once per test process for every place
//! that needs one (the `backends` and `cli` test binaries, the library's own PostgreSQL
//! test, the `cached_store` bench), in this order:
//!
//! 1. the URL in `DATABASE_URL` / `REDIS_URL`, when set (`.ci/run` sets both);
//! 2. the machine's server, when one answers on its default port on 127.0.0.1 (5432,
//!    6379): `postgres://postgres@127.0.0.1:5432/test`, `redis://127.0.0.1:6379`;
//! 3. a private server started for the test process ([`PrivateServer`]): PostgreSQL made by
//!    `initdb` in a temporary folder and run by `pg_ctl`, Redis by `redis-server`, each on a
//!    free loopback port. As root, PostgreSQL runs as the `postgres` user (or `nobody`),
//!    since it refuses root.
//!
//! A private server is stopped, and its folder removed, by a watchdog: a shell that started
//! it and waits on a pipe whose other end only the test process holds. The pipe closes when
//! the test process ends however it ends (the test harness never drops statics, and a
//! killed process drops nothing), and the watchdog then stops the server. The watchdog sits
//! in a process group of its own, so the Ctrl-C that stops `cargo test` does not stop it
//! before it has cleaned up.
//!
//! When a server has to be started and its programs are missing, every test that needs it
//! fails with the same one message, naming the Debian packages to install for all the
//! servers missing (`postgresql`, `redis-server`).
//!
//! Only the standard library is used, so that any test target can include this file.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A server the tests can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Postgres,
    Redis,
}

impl Service {
    const ALL: [Service; 2] = [Service::Postgres, Service::Redis];

    fn name(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL",
            Service::Redis => "Redis",
        }
    }

    /// The variable that names a running server.
    pub fn variable(self) -> &'static str {
        match self {
            Service::Postgres => "DATABASE_URL",
            Service::Redis => "REDIS_URL",
        }
    }

    /// The port the machine's server answers on, on 127.0.0.1.
    pub fn default_port(self) -> u16 {
        match self {
            Service::Postgres => 5432,
            Service::Redis => 6379,
        }
    }

    fn machine_url(self) -> &'static str {
        match self {
            Service::Postgres => "postgres://postgres@127.0.0.1:5432/test",
            Service::Redis => "redis://127.0.0.1:6379",
        }
    }

    /// The Debian package that installs the server's programs.
    fn package(self) -> &'static str {
        match self {
            Service::Postgres => "postgresql",
            Service::Redis => "redis-server",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How the tests reach a service: a URL, or the one message to fail with.
type Resolved = Result<String, String>;

static RESOLVED: [OnceLock<Resolved>; 2] = [OnceLock::new(), OnceLock::new()];
/// The private servers of this process, kept (and so their watchdogs' pipes open) until it
/// ends.
static PRIVATE: [OnceLock<PrivateServer>; 2] = [OnceLock::new(), OnceLock::new()];

/// The PostgreSQL URL the tests use (see the module's docs); panics with what to do when
/// there is none.
pub fn database_url() -> String {
    url_of(Service::Postgres)
}

/// The Redis URL the tests use (see the module's docs); panics with what to do when there is
/// none.
pub fn redis_url() -> String {
    url_of(Service::Redis)
}

/// The URL of `service`, or a panic with the one message that says what is missing.
pub fn url_of(service: Service) -> String {
    match resolve(service) {
        Ok(url) => url,
        Err(message) => panic!("{message}"),
    }
}

/// The URL of `service`, resolved once per process.
pub fn resolve(service: Service) -> Resolved {
    RESOLVED[service.index()]
        .get_or_init(|| {
            if let Some(url) = variable(service) {
                return Ok(url);
            }
            if answers(service.default_port()) {
                return Ok(service.machine_url().to_owned());
            }
            // The same message for each service, naming every server that has to be started
            // and cannot be: one thing to install, whichever test asks first.
            let missing: Vec<Service> = Service::ALL
                .into_iter()
                .filter(|s| {
                    variable(*s).is_none() && !answers(s.default_port()) && programs(*s).is_err()
                })
                .collect();
            if !missing.is_empty() {
                return Err(missing_message(&missing));
            }
            let server = PrivateServer::start(service)?;
            let url = server.url.clone();
            let _ = PRIVATE[service.index()].set(server);
            Ok(url)
        })
        .clone()
}

fn variable(service: Service) -> Option<String> {
    std::env::var(service.variable())
        .ok()
        .filter(|url| !url.is_empty())
}

pub fn missing_message(missing: &[Service]) -> String {
    let names: Vec<&str> = missing.iter().map(|s| s.name()).collect();
    let packages: Vec<&str> = missing.iter().map(|s| s.package()).collect();
    let variables: Vec<&str> = missing.iter().map(|s| s.variable()).collect();
    let ports: Vec<String> = missing
        .iter()
        .map(|s| s.default_port().to_string())
        .collect();
    format!(
        "these tests need {names}: install {pronoun} (Debian: apt-get install {packages}) and \
         the tests start a private server of their own, or point {variables} at a running one \
         (nothing answers on 127.0.0.1:{ports})",
        names = names.join(" and "),
        pronoun = if missing.len() == 1 { "it" } else { "them" },
        packages = packages.join(" "),
        variables = variables.join(" and "),
        ports = ports.join(" / "),
    )
}

/// Whether something accepts connections on `port` of 127.0.0.1.
pub fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Where a service's programs are: PostgreSQL's `bin` folder (holding `initdb` and
/// `pg_ctl`), or `redis-server` itself.
fn programs(service: Service) -> Result<PathBuf, String> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    match service {
        Service::Postgres => {
            // Debian keeps them out of PATH, one folder per major version: newest first.
            let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse().ok()?;
                    Some((version, entry.path().join("bin")))
                })
                .collect();
            versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
            dirs.extend(versions.into_iter().map(|(_, dir)| dir));
            dirs.into_iter()
                .find(|dir| executable(&dir.join("initdb")) && executable(&dir.join("pg_ctl")))
                .ok_or_else(|| "initdb and pg_ctl are not installed".to_owned())
        }
        Service::Redis => {
            dirs.extend(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from));
            dirs.into_iter()
                .map(|dir| dir.join("redis-server"))
                .find(|path| executable(path))
                .ok_or_else(|| "redis-server is not installed".to_owned())
        }
    }
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A user the server runs as, when the tests run as root (PostgreSQL refuses root).
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `postgres`, or `nobody` where there is no such user, from /etc/passwd.
fn unprivileged_user() -> Result<RunAs, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    let find = |name: &str| {
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != name {
                return None;
            }
            let _password = fields.next()?;
            Some(RunAs {
                uid: fields.next()?.parse().ok()?,
                gid: fields.next()?.parse().ok()?,
            })
        })
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .ok_or_else(|| "no postgres or nobody user to run PostgreSQL as (it refuses root)".into())
}

/// A free port on 127.0.0.1, as the system hands them out.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Starts PostgreSQL in "$1" (a fresh folder) from the programs in "$2" on port "$3",
/// prints `ready <pid>`, and stops it and removes the folder once its input closes.
const POSTGRES_WATCHDOG: &str = r#"
trap '' PIPE
dir=$1 bin=$2 port=$3
fail() {
  echo "$1 failed:"
  for log in "$dir"/*.log; do [ -f "$log" ] && tail -n 20 "$log"; done
  "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$dir"
  exit 1
}
"$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
  || fail initdb
"$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >"$dir/pg_ctl.log" 2>&1 \
  || fail "pg_ctl start"
echo "ready $(head -n 1 "$dir/data/postmaster.pid")"
exec >/dev/null 2>&1
while read -r _; do :; done
"$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop || "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop
rm -rf "$dir"
"#;

/// Starts `redis-server` ("$2") in "$1" on port "$3", prints `ready <pid>`, and stops it
/// and removes the folder once its input closes.
const REDIS_WATCHDOG: &str = r#"
trap '' PIPE
dir=$1 server=$2 port=$3
"$server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" --daemonize no </dev/null >/dev/null 2>&1 &
pid=$!
echo "ready $pid"
exec >/dev/null 2>&1
while read -r _; do :; done
kill -TERM "$pid"
wait "$pid"
rm -rf "$dir"
"#;

/// A server started for the tests, in a temporary folder, watched by a shell that stops it
/// and removes the folder when [`stop`](PrivateServer::stop) is called or the test process
/// ends.
#[derive(Debug)]
pub struct PrivateServer {
    pub service: Service,
    pub url: String,
    /// The server's process (PostgreSQL's postmaster).
    pub pid: u32,
    pub dir: PathBuf,
    watchdog: Child,
    /// The pipe the watchdog waits on: closed, it stops the server.
    watching: Option<ChildStdin>,
}

impl PrivateServer {
    /// Starts a private `service` and waits until it answers.
    pub fn start(service: Service) -> Result<PrivateServer, String> {
        let fail = |e: String| format!("could not start a private {}: {e}", service.name());
        let programs = programs(service).map_err(|_| missing_message(&[service]))?;
        let port = free_port().map_err(fail)?;
        let run_as = match (service, running_as_root()) {
            (Service::Postgres, true) => Some(unprivileged_user().map_err(fail)?),
            _ => None,
        };
        let dir = fresh_dir(service, run_as).map_err(fail)?;
        let script = match service {
            Service::Postgres => POSTGRES_WATCHDOG,
            Service::Redis => REDIS_WATCHDOG,
        };
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(script)
            .arg("gis-auth-test-watchdog")
            .arg(&dir)
            .arg(&programs)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some(user) = run_as {
            command.uid(user.uid).gid(user.gid);
        }
        let mut watchdog = command.spawn().map_err(|e| fail(format!("sh: {e}")))?;
        let watching = watchdog.stdin.take();
        let mut out = BufReader::new(watchdog.stdout.take().expect("piped"));
        let mut first = String::new();
        let _ = out.read_line(&mut first);
        let pid = match first.trim().strip_prefix("ready ") {
            Some(pid) => pid.trim().parse::<u32>().ok(),
            None => None,
        };
        let Some(pid) = pid else {
            let mut rest = String::new();
            let _ = out.read_to_string(&mut rest);
            drop(watching);
            let _ = watchdog.wait();
            return Err(fail(format!("{first}{rest}")));
        };
        let url = match service {
            Service::Postgres => format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            Service::Redis => format!("redis://127.0.0.1:{port}"),
        };
        let server = PrivateServer {
            service,
            url,
            pid,
            dir,
            watchdog,
            watching,
        };
        if service == Service::Redis && !redis_answers(port, Duration::from_secs(20)) {
            let log = std::fs::read_to_string(server.dir.join("redis.log")).unwrap_or_default();
            server.stop();
            return Err(fail(format!("it did not answer PING within 20 s:\n{log}")));
        }
        Ok(server)
    }

    /// Stops the server and waits until its watchdog has removed its folder.
    pub fn stop(mut self) {
        drop(self.watching.take());
        let _ = self.watchdog.wait();
    }
}

/// A folder of its own under the system's temporary folder, owned by `run_as`.
fn fresh_dir(service: Service, run_as: Option<RunAs>) -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "gis-auth-test-{}-{}-{nanos:09}",
        service.package(),
        std::process::id()
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// Whether Redis on `port` answers `PING` within `limit`.
fn redis_answers(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ping(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One `PING` to Redis on `port`: whether it answered `+PONG`.
pub fn ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0u8; 7];
    conn.write_all(b"PING\r\n").is_ok()
        && conn.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// Whether process `pid` is gone (or a zombie waiting to be reaped: it runs no more).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}
