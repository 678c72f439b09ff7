//! Network namespaces for tests and benchmarks of real links: a namespace with two
//! veth links into it, one shaped with tbf (a slow link with a deep buffer), one not.
//! Needs root.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

fn run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A namespace with two veth links into it: `shaped` and `plain`. Removed on drop.
pub struct Links {
    pub ns: String,
    outer: [String; 2],
    /// The namespace's addresses on the shaped and the plain link.
    pub addrs: [String; 2],
}

impl Links {
    pub fn create(rate: &str) -> Links {
        let id = std::process::id() % 200 + 20;
        let ns = format!("dclink{id}");
        let outer = [format!("dcs{id}o"), format!("dcp{id}o")];
        let inner = [format!("dcs{id}i"), format!("dcp{id}i")];
        let addrs = [format!("10.{id}.1.2"), format!("10.{id}.2.2")];
        let links = Links {
            ns: ns.clone(),
            outer: outer.clone(),
            addrs: addrs.clone(),
        };
        let ok = |args: &[&str]| assert!(run(args), "set-up step failed: {args:?}");
        let _ = run(&["ip", "netns", "del", &ns]);
        ok(&["ip", "netns", "add", &ns]);
        ok(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        for i in 0..2 {
            let _ = run(&["ip", "link", "del", &outer[i]]);
            ok(&[
                "ip", "link", "add", &outer[i], "type", "veth", "peer", "name", &inner[i],
            ]);
            ok(&["ip", "link", "set", &inner[i], "netns", &ns]);
            let here = format!("10.{id}.{}.1/24", i + 1);
            let there = format!("{}/24", addrs[i]);
            ok(&["ip", "addr", "add", &here, "dev", &outer[i]]);
            ok(&["ip", "link", "set", &outer[i], "mtu", "1500", "up"]);
            ok(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", &there, "dev", &inner[i],
            ]);
            ok(&[
                "ip", "netns", "exec", &ns, "ip", "link", "set", &inner[i], "mtu", "1500", "up",
            ]);
        }
        // What the server sends on the first link leaves through this queue.
        ok(&[
            "ip", "netns", "exec", &ns, "tc", "qdisc", "add", "dev", &inner[0], "root", "tbf",
            "rate", rate, "burst", "16kb", "latency", "300ms",
        ]);
        links
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.ns]);
        for o in &self.outer {
            let _ = run(&["ip", "link", "del", o]);
        }
    }
}

/// A deskcast process, killed on drop.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Links {
    /// Starts the deskcast binary `exe` inside the namespace, listening on all its
    /// addresses (both links allowed as hosts) with `args` and `envs`; returns it and
    /// its port.
    pub fn deskcast(&self, exe: &str, args: &[&str], envs: &[(&str, &str)]) -> (Server, u16) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, exe])
            .args(["--bind", "0.0.0.0", "--port", "0"])
            .args([
                "--allow-host",
                &self.addrs[0],
                "--allow-host",
                &self.addrs[1],
            ])
            .args(args)
            .env("RUST_LOG", "deskcast=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start deskcast in the namespace");
        let stdout = child.stdout.take().expect("stdout");
        let server = Server(child);
        let mut lines = std::io::BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("deskcast printed where it listens")
                .expect("read");
            if let Some(rest) = line.split("listens on 0.0.0.0:").nth(1) {
                break rest
                    .split(':')
                    .next()
                    .and_then(|p| p.trim().parse().ok())
                    .expect("port");
            }
        };
        std::thread::spawn(move || for _ in lines {});
        (server, port)
    }
}
