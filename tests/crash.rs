//! Crash consistency: SIGKILL `robot-token get` in the middle of renewals.
//!
//! Two invariants hold after every kill, whatever the kill point:
//! 1. a new token in the token file implies the credential was rotated, and the saved
//!    refresh token works at the next run;
//! 2. an old token with a rotated credential is allowed, and the next run then
//!    succeeds without presenting the old refresh token again.
//!
//! Besides: the token file is the old token or the new one, complete; the credential
//! parses; no temp file survives the next run. The one outcome that needs a person is
//! a kill between sending the refresh token and saving the rotated one (the issuer
//! rotated it, the answer died with the process): the next run says so.
//!
//! Two kinds of kill points:
//! - deterministic: the `test-hooks` feature's `ROBOT_TOKEN_TEST_KILL_AFTER_WRITES=N`
//!   kills the run right after its Nth durable file write. A renewal writes the
//!   credential first, then the token file, then the state file; a build that writes
//!   the token file first fails here on every run;
//! - random: SIGKILL after a random delay, counting real kills during a renewal
//!   against children that had already exited, and renewals that really happened.
//!   The default run does a few; `scripts/reliability.sh` does 500
//!   (ROBOT_TOKEN_CRASH_TRIALS). The write paths are stretched by the test-only delay
//!   hook (ROBOT_TOKEN_TEST_WRITE_DELAY_MS, 10 ms; ROBOT_TOKEN_CRASH_WRITE_DELAY_MS
//!   sets another) so that kills land inside them.
//!
//! Both need the `test-hooks` feature (scripts/test.sh sets it); without it they are
//! listed as ignored, never passed.

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Deterministic pseudo-random kill points (xorshift), so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// One robot (an issuer, a credential, an expired token file) and the write delay of
/// its runs.
struct CrashRobot {
    robot: Robot,
    /// ROBOT_TOKEN_TEST_WRITE_DELAY_MS for every run, when set.
    write_delay_ms: Option<u64>,
}

impl std::ops::Deref for CrashRobot {
    type Target = Robot;
    fn deref(&self) -> &Robot {
        &self.robot
    }
}

impl CrashRobot {
    /// Its `get` has -m above the token lifetime: every run renews.
    fn new() -> CrashRobot {
        let robot = Robot::start().with_opts(&["-vv", "-m", "7200"]);
        robot.expire();
        CrashRobot {
            robot,
            write_delay_ms: None,
        }
    }

    /// A new credential with a new refresh token (what `robot-token init` does).
    fn rebootstrap(&self) {
        let rt = self.iss.refresh_token("robot-basic");
        assert_eq!(
            self.env.credential(&self.iss, "robot-basic", Some(&rt)),
            self.cred
        );
    }

    fn get(&self) -> std::process::Command {
        let mut c = self.robot.cmd();
        if let Some(ms) = self.write_delay_ms {
            c.env("ROBOT_TOKEN_TEST_WRITE_DELAY_MS", ms.to_string());
        }
        c
    }

    fn refresh_token(&self) -> String {
        let text = read(&self.cred);
        let parsed =
            robot_token::source::credential::Credential::parse(text.as_bytes(), &self.cred)
                .unwrap_or_else(|e| panic!("credential unparsable after a kill: {e}"));
        parsed
            .refresh_token
            .as_ref()
            .expect("the credential lost its refresh token")
            .expose()
            .to_string()
    }
}

/// What a killed run left on disk, compared with what was there before it.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Left {
    /// Nothing changed (killed before the issuer answered, or it never rotated).
    Untouched,
    /// The rotated refresh token is saved; the token file still holds the old token.
    Rotated,
    /// Both the credential and the token file are new.
    Renewed,
    /// The refresh token went out and its answer died with the process.
    LostInFlight,
}

/// Check the invariants after a killed run, run the next (unkilled) one, and say
/// what the kill had left and the next run's timings. Panics naming the trial on
/// any violation.
fn check_after_kill(
    r: &CrashRobot,
    trial: &str,
    old_token: &str,
    old_rt: &str,
    killed_log: &str,
) -> (Left, Timings) {
    // The token file: old or new, and complete.
    let token = read(&r.out);
    let new_token = token != old_token;
    if new_token {
        assert!(
            token.ends_with('\n'),
            "{trial}: partial token file {token:?}"
        );
        assert!(
            lifetime(&token) > 0,
            "{trial}: the new token is not a valid JWT"
        );
    }
    let rt = r.refresh_token();
    let rotated = rt != old_rt;
    // Invariant 1, first half: a new token is never on disk before the rotated
    // refresh token.
    assert!(
        !new_token || rotated,
        "{trial}: the token file holds a new token but the credential still has the spent \
         refresh token: the access token was written before the rotated refresh token\n\
         killed run log:\n{killed_log}"
    );

    // The next run, unkilled, must work with what is on disk, and must never present
    // a refresh token the issuer has already seen (invariants 1 and 2).
    let reused_before = r.iss.refresh_reused();
    let (next, timings) = run_timed(&mut r.get());
    let reused = r.iss.refresh_reused() - reused_before;
    let lost = !rotated
        && killed_log.contains("requesting a token")
        && !killed_log.contains("saved it to");
    let left = match next.code {
        0 => {
            assert_eq!(
                reused, 0,
                "{trial}: the next run presented a refresh token the issuer had already seen\n{}",
                next.stderr
            );
            assert_ne!(
                r.refresh_token(),
                rt,
                "{trial}: the next run did not rotate"
            );
            assert_issued_token(&r.out, &r.iss, "robot-basic");
            match (new_token, rotated) {
                (true, _) => Left::Renewed,
                (false, true) => Left::Rotated,
                (false, false) => Left::Untouched,
            }
        }
        77 if lost => {
            // Killed after the refresh token left and before the rotated one was
            // saved: the inherent lost-response window. The next run says so.
            assert!(
                next.stderr.contains("an earlier run sent it at"),
                "{trial}: distinct message: {}",
                next.stderr
            );
            assert_eq!(read(&r.out), token, "{trial}: the old token stays");
            r.rebootstrap();
            let again = run(&mut r.get());
            assert_eq!(again.code, 0, "{trial}: {}", again.stderr);
            Left::LostInFlight
        }
        code => panic!(
            "{trial}: next run exit {code}: {}\nkilled run log:\n{killed_log}",
            next.stderr
        ),
    };
    assert!(
        temp_files(r.env.dir.path()).is_empty(),
        "{trial}: temp files remain: {:?}",
        temp_files(r.env.dir.path())
    );
    (left, timings)
}

/// Where an unkilled run spends its time, from its `-vv` log lines stamped as they
/// arrive: the whole run, the token request, and the lost-in-flight window (from
/// "requesting a token" to the rotated refresh token's "saved it to").
#[derive(Debug, Default, Clone, Copy)]
struct Timings {
    run_ms: f64,
    request_ms: Option<f64>,
    in_flight_ms: Option<f64>,
}

/// [`run`], stamping each stderr line with the time it arrived.
fn run_timed(cmd: &mut std::process::Command) -> (Output, Timings) {
    use std::io::BufRead;
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .map(|l| (started.elapsed(), l))
            .collect::<Vec<_>>()
    });
    let status = wait_status(&mut child, CHILD_TIMEOUT);
    let run_ms = started.elapsed().as_secs_f64() * 1e3;
    let lines = reader.join().unwrap();
    let at = |needle: &str| {
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| t.as_secs_f64() * 1e3)
    };
    let in_flight_ms = match (at("requesting a token"), at("saved it to")) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let timings = Timings {
        run_ms,
        request_ms: token_request_ms(&text),
        in_flight_ms,
    };
    let out = Output {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: text,
    };
    (out, timings)
}

/// The duration of the token request in a `-vv` log: "POST URL -> 200 in 12.3 ms".
fn token_request_ms(log: &str) -> Option<f64> {
    log.lines()
        .filter(|l| l.contains("POST ") && l.contains(" -> 200 in "))
        .filter_map(|l| {
            l.split(" -> 200 in ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .next_back()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A renewal's durable writes (renames made durable), in order: the credential
/// (rotated refresh token), then the token file. A kill right after each must keep
/// the invariants, and a kill after the first must find the credential written, not
/// the token file. Past the last write the run is not killed and ends well.
#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks")]
fn a_kill_after_each_durable_write_keeps_the_invariants() {
    let r = CrashRobot::new();
    for n in 1.. {
        let trial = format!("kill after write {n}");
        let old_token = read(&r.out);
        let old_rt = r.refresh_token();
        let out = run(r
            .get()
            .env("ROBOT_TOKEN_TEST_KILL_AFTER_WRITES", n.to_string()));
        let (left, _) = check_after_kill(&r, &trial, &old_token, &old_rt, &out.stderr);
        let want = match n {
            // The rotated refresh token is the first thing on disk.
            1 => Left::Rotated,
            // Then the token file.
            _ => Left::Renewed,
        };
        assert_eq!(left, want, "{trial}: {}", out.stderr);
        if out.code == 0 {
            assert!(
                n > 2,
                "{trial}: the hook did not kill the run: {}",
                out.stderr
            );
            break;
        }
        assert_eq!(out.code, -1, "{trial}: {}", out.stderr);
        assert!(
            n < 5,
            "a renewal makes a handful of durable writes, not {n}"
        );
    }
    assert_eq!(r.iss.refresh_reused(), 0);
}

#[derive(Default, Debug)]
struct Counts {
    trials: usize,
    /// SIGKILL reached a running child after it had decided to renew.
    killed_renewing: usize,
    /// SIGKILL reached a running child still starting or checking freshness.
    killed_early: usize,
    /// The child had already exited when the kill was sent.
    already_exited: usize,
    /// Killed runs whose refresh token the issuer redeemed (rotated on disk, renewed,
    /// or lost in flight): renewals that really happened.
    redeemed: usize,
    /// What the kills left.
    untouched: usize,
    rotated_only: usize,
    renewed: usize,
    lost_in_flight: usize,
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks")]
fn sigkill_at_random_points_never_loses_a_token() {
    let trials: usize = std::env::var("ROBOT_TOKEN_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut r = CrashRobot::new();
    // The test-only write delay (ms before each rename) that stretches the write path
    // so that kills land in it; ROBOT_TOKEN_CRASH_WRITE_DELAY_MS=0 measures without.
    r.write_delay_ms = Some(
        std::env::var("ROBOT_TOKEN_CRASH_WRITE_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    );
    let mut rng = Rng(0x9e3779b97f4a7c15);
    // Kill points spread over a whole renewal as it runs on this machine now: the
    // 4th shortest of the last 8 unkilled runs (each trial's next run is one). A
    // window sized on one run, or on the longest, mostly kills processes that have
    // already exited when the shared machine's load swings; a shorter one never
    // reaches the token file's write.
    let mut recent: std::collections::VecDeque<u64> = (0..8)
        .map(|_| {
            let t = Instant::now();
            let out = run(&mut r.get());
            assert_eq!(out.code, 0, "{}", out.stderr);
            t.elapsed().as_micros() as u64
        })
        .collect();
    let window = |recent: &std::collections::VecDeque<u64>| {
        let mut v: Vec<u64> = recent.iter().copied().collect();
        v.sort();
        v[v.len() * 3 / 8].max(1000)
    };
    let mut windows = Vec::new();
    // Unkilled runs: their length and their token request's, for the window figures.
    let (mut run_ms, mut post_ms_all, mut in_flight_all) = (Vec::new(), Vec::new(), Vec::new());
    let mut c = Counts::default();
    let started = Instant::now();
    for trial in 0..trials {
        c.trials += 1;
        let old_token = read(&r.out);
        let old_rt = r.refresh_token();
        let log = r.env.path("killed.log");
        let window_us = window(&recent);
        windows.push(window_us);
        let mut child = r
            .get()
            .stderr(Stdio::from(fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.next(window_us)));
        let _ = child.kill();
        let status = wait_status(&mut child, CHILD_TIMEOUT);
        let killed_log = read(&log);
        if status.signal() == Some(libc::SIGKILL) {
            // The stale token's message comes before any network or write.
            if killed_log.contains("renewing") {
                c.killed_renewing += 1;
            } else {
                c.killed_early += 1;
            }
        } else {
            assert!(status.success(), "trial {trial}: {status}\n{killed_log}");
            c.already_exited += 1;
        }
        let (left, timings) = check_after_kill(
            &r,
            &format!("trial {trial}"),
            &old_token,
            &old_rt,
            &killed_log,
        );
        if left != Left::LostInFlight {
            recent.pop_front();
            recent.push_back((timings.run_ms * 1e3) as u64);
            run_ms.push(timings.run_ms);
            post_ms_all.extend(timings.request_ms);
            in_flight_all.extend(timings.in_flight_ms);
        }
        match left {
            Left::Untouched => c.untouched += 1,
            Left::Rotated => c.rotated_only += 1,
            Left::Renewed => c.renewed += 1,
            Left::LostInFlight => c.lost_in_flight += 1,
        }
        if left != Left::Untouched {
            c.redeemed += 1;
        }
    }
    windows.sort();
    eprintln!(
        "crash trials: unkilled runs (write delay {} ms per file): median {:.1} ms, of which \
         the token request {:.1} ms and the lost-in-flight window (request sent to rotated \
         refresh token saved) {:.1} ms",
        r.write_delay_ms.unwrap_or(0),
        median(&mut run_ms),
        median(&mut post_ms_all),
        median(&mut in_flight_all)
    );
    eprintln!(
        "crash trials: {} trials in {:.1} s (kill window median {:.1} ms): {} killed while renewing, \
         {} killed before deciding to renew, {} had already exited; what the kills left: \
         {} untouched, {} rotated credential with the old token, {} new token, {} lost in \
         flight; {} renewals redeemed at the issuer",
        c.trials,
        started.elapsed().as_secs_f64(),
        windows[windows.len() / 2] as f64 / 1e3,
        c.killed_renewing,
        c.killed_early,
        c.already_exited,
        c.untouched,
        c.rotated_only,
        c.renewed,
        c.lost_in_flight,
        c.redeemed
    );
    assert_eq!(
        c.untouched + c.rotated_only + c.renewed + c.lost_in_flight,
        c.trials
    );
    // Trials that cannot pass vacuously: most kills must hit a live renewal, and some
    // renewal must have reached the issuer.
    assert!(
        c.killed_renewing * 2 >= c.trials,
        "fewer than half the trials killed a run during a renewal: {c:?}"
    );
    assert!(
        c.redeemed > 0,
        "no killed run got as far as a renewal: {c:?}"
    );
}
