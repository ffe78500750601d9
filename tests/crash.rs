//! Crash consistency: SIGKILL `robot-token get` at random points of renewals.
//!
//! After each kill: the token file is the old token or the new one, complete; the
//! credential parses; the next run succeeds with it (the refresh token is still
//! accepted), unless the kill fell between sending the refresh token and saving the
//! rotated one, which the killed run's log shows; no temp file survives the next run.
//!
//! The default run does a few trials; `scripts/reliability.sh` does 500
//! (ROBOT_TOKEN_CRASH_TRIALS). The write paths are stretched by the test-only hook
//! of the `test-hooks` feature, so that kills land inside them.

mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect()
}

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

#[derive(Default, Debug)]
struct Counts {
    trials: usize,
    token_old: usize,
    token_new: usize,
    cred_rotated: usize,
    lost_in_flight: usize,
    next_run_ok: usize,
}

#[test]
#[cfg_attr(
    not(feature = "test-hooks"),
    ignore = "needs --features test-hooks (scripts/test.sh sets it)"
)]
fn sigkill_at_random_points_never_loses_a_token() {
    let trials: usize = std::env::var("ROBOT_TOKEN_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let iss = Issuer::start();
    let env = Env::new();
    let out = env.path("bt");
    let mint = || {
        iss.mint("robot-basic", "openid offline_access storage.read:/", None)
            .0
    };
    let mut cred = env.credential(&iss, "robot-basic", Some(&mint()));
    fs::write(&out, iss.mint_expired() + "\n").unwrap();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    // Kill points spread over a whole renewal as it runs on this machine now.
    let t = Instant::now();
    let r = run(env
        .cmd()
        .args(["get", "-m", "7200", "-o"])
        .arg(&out)
        .arg("-c")
        .arg(&cred)
        .env("ROBOT_TOKEN_TEST_WRITE_DELAY_MS", "10"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let window_us = (t.elapsed().as_micros() as u64 * 12 / 10).max(1000);
    let mut c = Counts::default();
    let started = Instant::now();
    for trial in 0..trials {
        c.trials += 1;
        let old_token = read(&out);
        let old_cred = read(&cred);
        // -m above the token lifetime: every run renews.
        let log = env.path("killed.log");
        let mut child = env
            .cmd()
            .args(["get", "-vv", "-m", "7200", "-o"])
            .arg(&out)
            .arg("-c")
            .arg(&cred)
            .env("ROBOT_TOKEN_TEST_WRITE_DELAY_MS", "10")
            .stderr(Stdio::from(fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.next(window_us)));
        let _ = child.kill();
        let _ = child.wait();
        let killed_log = read(&log);

        // The token file: old or new, and complete.
        let now_token = read(&out);
        if now_token == old_token {
            c.token_old += 1;
        } else {
            assert!(
                now_token.ends_with('\n'),
                "trial {trial}: partial token file"
            );
            assert!(
                lifetime(&now_token) > 0,
                "trial {trial}: new token is not a valid JWT"
            );
            c.token_new += 1;
        }
        // The credential parses and holds a refresh token.
        let text = read(&cred);
        let parsed = robot_token::credential::Credential::parse(text.as_bytes(), &cred)
            .unwrap_or_else(|e| panic!("trial {trial}: credential unparsable: {e}"));
        assert!(parsed.refresh_token.is_some());
        if text != old_cred {
            c.cred_rotated += 1;
        }

        // The next run, unkilled, must work with what is on disk.
        let r = run(env
            .cmd()
            .args(["get", "-m", "7200", "-o"])
            .arg(&out)
            .arg("-c")
            .arg(&cred));
        match r.code {
            0 => c.next_run_ok += 1,
            77 if killed_log.contains("requesting a token")
                && !killed_log.contains("saved it to") =>
            {
                // Killed after the refresh token left and before the rotated one was
                // saved: the inherent lost-response window. Re-bootstrap and go on.
                assert!(
                    r.stderr.contains("an earlier run sent it at"),
                    "distinct message: {}",
                    r.stderr
                );
                c.lost_in_flight += 1;
                cred = env.credential(&iss, "robot-basic", Some(&mint()));
                let r = run(env
                    .cmd()
                    .args(["get", "-m", "7200", "-o"])
                    .arg(&out)
                    .arg("-c")
                    .arg(&cred));
                assert_eq!(r.code, 0, "{}", r.stderr);
            }
            code => {
                panic!(
                    "trial {trial}: next run exit {code}: {}\nkilled run log:\n{killed_log}",
                    r.stderr
                );
            }
        }
        assert!(
            temp_files(env.dir.path()).is_empty(),
            "trial {trial}: temp files remain"
        );
    }
    eprintln!(
        "crash trials: {c:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(c.token_old + c.token_new, c.trials);
}
