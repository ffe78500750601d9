//! A real HTTP proxy: Debian's `tinyproxy` (scripts/install-peers.sh installs it) on
//! 127.0.0.1, logging the CONNECT requests it gets.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::wait_ms;

/// A running tinyproxy on 127.0.0.1, killed on drop.
pub struct Tinyproxy {
    child: Child,
    log: PathBuf,
    pub url: String,
}

impl Tinyproxy {
    /// Started with its configuration and log in `dir`.
    pub fn start(dir: &Path) -> Tinyproxy {
        // A free port: tinyproxy cannot be told to pick one.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\n\
                 MaxClients 20\nAllow 127.0.0.1\n",
                log.display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "tinyproxy is missing: run scripts/install-peers.sh (Debian package tinyproxy)",
            );
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "tinyproxy did not start"
            );
            wait_ms(20);
        }
        Tinyproxy {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The CONNECT requests the proxy received, as "host:port".
    pub fn connects(&self) -> Vec<String> {
        let Ok(f) = std::fs::File::open(&self.log) else {
            return Vec::new();
        };
        BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| {
                l.split_once("): CONNECT ")
                    .map(|(_, rest)| rest.split(' ').next().unwrap_or("").to_string())
            })
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
