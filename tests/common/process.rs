//! Running children with a time limit, the binary under test and the peers alike: a
//! test fails on a hang instead of waiting for CI's budget to run out.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// What a run of the binary said.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// How long one child may run before a test calls it hung: far above any honest
/// run on a loaded 2-core machine, far below a CI budget.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// `VERB -o OUT -c CRED`: the command line of most tests, for `get` and `revoke`
/// (`Env::get` and `Env::revoke` start one); the caller adds the rest.
pub fn line(verb: &str, out: impl AsRef<OsStr>, cred: impl AsRef<OsStr>) -> [OsString; 5] {
    [
        verb.into(),
        "-o".into(),
        out.as_ref().to_owned(),
        "-c".into(),
        cred.as_ref().to_owned(),
    ]
}

/// [`run`] and [`run_within`] as methods, so that a command reads left to right:
/// `env.get(&out, &cred).args(["-m", "60"]).run()`; `start` for runs that overlap.
pub trait Run {
    fn run(&mut self) -> Output;
    fn run_within(&mut self, secs: u64) -> Output;
    /// Spawned with stdout and stderr piped, for [`wait_success`] or [`wait_output`].
    fn start(&mut self) -> Child;
}

impl Run for Command {
    fn run(&mut self) -> Output {
        run(self)
    }
    fn run_within(&mut self, secs: u64) -> Output {
        run_within(self, secs)
    }
    fn start(&mut self) -> Child {
        self.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.get_program()))
    }
}

/// A child's output after it exited 0 (its stderr in the panic when not), at most
/// [`CHILD_TIMEOUT`].
pub fn wait_success(child: Child) -> std::process::Output {
    let o = wait_output(child, CHILD_TIMEOUT);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Start a test peer that prints one JSON ready line on stdout and exits when its
/// stdin closes; its log goes to stderr only with PEER_LOG set. Returns the child, its
/// stdin (hold it to keep the peer alive) and the ready line.
pub fn spawn_peer(cmd: &mut Command, what: &str) -> (Child, Option<ChildStdin>, Value) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("PEER_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdin = child.stdin.take();
    // The ready line within a time limit: a peer that hangs while starting fails
    // the test instead of hanging it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let r = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(r);
    });
    let line = match rx.recv_timeout(CHILD_TIMEOUT) {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => panic!("{what}: no ready line: {e}"),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: no ready line within {} s", CHILD_TIMEOUT.as_secs())
        }
    };
    let ready: Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("{what} did not start: {line:?}"));
    (child, stdin, ready)
}

/// `child`'s output, or a panic (after killing it) when it outlives `limit`.
pub fn wait_output(mut child: Child, limit: Duration) -> std::process::Output {
    use std::io::Read;
    // Drain both pipes in threads, so a chatty child cannot block on a full pipe.
    let drain = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for a child") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "child process {} still running after {} s: killed; its stderr:\n{}",
                child.id(),
                limit.as_secs(),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Wait for `child` (whose pipes the caller handles) at most `limit`; kill it and
/// panic when it is still running then.
pub fn wait_status(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait for a child") {
            return s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "child process {} still running after {} s: killed",
                child.id(),
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `cmd.output()` with [`CHILD_TIMEOUT`]. Unlike `output()` it leaves stdin as the
/// caller set it (inherited by default): set it.
pub fn output_of(cmd: &mut Command) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    wait_output(child, CHILD_TIMEOUT)
}

/// Run `cmd` to completion (at most [`CHILD_TIMEOUT`]), capturing its output.
pub fn run(cmd: &mut Command) -> Output {
    run_limited(cmd, CHILD_TIMEOUT)
}

/// [`run`] with another time limit.
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = retry_busy(|| cmd.spawn())
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    let out = wait_output(child, limit);
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run the binary, failing the test if it is still running after `secs`: for cases
/// where the bug is a hang (a FIFO waited on).
pub fn run_within(cmd: &mut Command, secs: u64) -> Output {
    run_limited(cmd, Duration::from_secs(secs))
}

pub fn wait_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Tests that copy the binary (tests/hostile.rs) can hit ETXTBSY: a child forked by
/// another test thread briefly holds the copy's write descriptor until it execs.
fn retry_busy<T>(mut f: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    for _ in 0..100 {
        match f() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            r => return r,
        }
    }
    f()
}
