//! The ECU beside a loopback suite (its own `ecu.cfg`, self-signed certificate, an admin, an
//! operator and a reader), curl against its HTTPS API, and headless Chromium driven over the
//! DevTools pipe protocol. Shared by `operator.rs` and `dashboard.rs`.
#![allow(dead_code, reason = "each test binary uses its share of this module")]

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use seesaw_lab::{LoopbackSuite, bins, wait_until};
use serde_json::{Value, json};

pub(crate) const ADMIN: &str = "admin-token-for-the-lab-0001";
pub(crate) const OPERATOR: &str = "operator-token-for-the-lab-01";
pub(crate) const READER: &str = "reader-token-for-the-lab-0001";

pub(crate) fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `seesaw_ecu` with the HTTPS API, stopped on drop.
pub(crate) struct Ecu {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub(crate) base: String,
    cacert: PathBuf,
    /// The audit log.
    pub(crate) audit: PathBuf,
    dir: PathBuf,
}

impl Drop for Ecu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            for f in ["ecu.out", "ecu.err"] {
                let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
                eprintln!("==== {f} ====\n{text}");
            }
        }
    }
}

/// A `seesaw_ecu` beside `suite` with the API on a free port and three users.
pub(crate) fn start_ecu(suite: &LoopbackSuite) -> Ecu {
    start_ecu_with(suite, &[])
}

/// As [`start_ecu`], with `extra` flags for `seesaw_ecu`.
pub(crate) fn start_ecu_with(suite: &LoopbackSuite, extra: &[&str]) -> Ecu {
    let dir = suite.dir().join("ecu-api");
    std::fs::create_dir_all(&dir).expect("ecu dir");
    let (cert, key) = seesaw_ecu::tls::self_signed(&["127.0.0.1"]).expect("certificate");
    std::fs::write(dir.join("cert.pem"), cert).expect("write cert");
    std::fs::write(dir.join("key.pem"), key).expect("write key");
    let port = free_port(Ipv4Addr::LOCALHOST);
    let audit = dir.join("audit.log");
    let cfg = dir.join("ecu.cfg");
    std::fs::write(
        &cfg,
        format!(
            "[api]\nlisten = 127.0.0.1:{port}\ncert = cert.pem\nkey = key.pem\naudit_log = {}\n\n\
             [user alice]\nrole = admin\ntoken = {ADMIN}\n\n\
             [user olga]\nrole = operator\ntoken = {OPERATOR}\n\n\
             [user rita]\nrole = reader\ntoken = {READER}\n",
            audit.display()
        ),
    )
    .expect("write ecu.cfg");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let monitor = free_port(Ipv4Addr::LOCALHOST);
    let out = std::fs::File::create(dir.join("ecu.out")).expect("out");
    let err = std::fs::File::create(dir.join("ecu.err")).expect("err");
    let child = Command::new(bins::binary("seesaw_ecu").expect("seesaw_ecu built"))
        .arg("--run-dir")
        .arg(suite.run_dir())
        .arg("--config-dir")
        .arg(suite.config_dir())
        .arg("--listen")
        .arg(format!("127.0.0.1:{monitor}"))
        .arg("--api-config")
        .arg(&cfg)
        .args(extra)
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "info")
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn seesaw_ecu");
    let ecu = Ecu {
        child,
        base: format!("https://127.0.0.1:{port}"),
        cacert: dir.join("cert.pem"),
        audit,
        dir,
    };
    wait_until("the ECU API to answer", Duration::from_secs(15), || {
        curl(&ecu, "GET", "/v1/whoami", Some(READER), None).0 == 200
    })
    .expect("ECU up");
    ecu
}

/// One HTTPS request with curl (the server's certificate pinned); (status, body).
pub(crate) fn curl(
    ecu: &Ecu,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
        "--cacert",
    ])
    .arg(&ecu.cacert)
    .arg(format!("{}{path}", ecu.base));
    if let Some(t) = token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {t}"));
    }
    if body.is_some() {
        cmd.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ]);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("curl (apt-get install curl)");
    if let (Some(b), Some(mut stdin)) = (body, child.stdin.take()) {
        stdin.write_all(b.as_bytes()).expect("curl stdin");
    }
    let out = child.wait_with_output().expect("curl output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

pub(crate) fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

// === headless Chromium over the DevTools protocol (pipe transport) ===

/// Chromium with `--remote-debugging-pipe`: commands go in on its fd 3 and answers come out on
/// its fd 4, NUL-separated JSON. `sh` maps fd 3 to our stdin pipe and fd 4 to our stdout pipe,
/// so no unsafe fd juggling is needed here.
pub(crate) struct Browser {
    child: Child,
    input: std::process::ChildStdin,
    replies: mpsc::Receiver<Value>,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    pub(crate) fn launch(chromium: &Path, profile: &Path) -> Self {
        let script = format!(
            "exec {} --headless --no-sandbox --disable-gpu --disable-background-networking \
             --ignore-certificate-errors --no-first-run --window-size=1400,1000 \
             --user-data-dir={} --remote-debugging-pipe 3<&0 4>&1 0</dev/null 1>/dev/null",
            chromium.display(),
            profile.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let input = child.stdin.take().expect("stdin");
        let output = child.stdout.take().expect("stdout");
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(output);
            loop {
                let mut msg = Vec::new();
                match reader.read_until(0, &mut msg) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        msg.pop_if(|b| *b == 0);
                        if let Ok(v) = serde_json::from_slice::<Value>(&msg)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        Self {
            child,
            input,
            replies,
            next_id: 1,
        }
    }

    pub(crate) fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.input.write_all(&bytes).expect("write to chromium");
        self.input.flush().expect("flush");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .replies
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    pub(crate) fn eval(&mut self, session: &str, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            Some(session),
        );
        r["result"]["value"].clone()
    }
}

/// Standard base64 (the screenshot).
pub(crate) fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Chromium's path, or `None` (saying that `test` skips) where it is not installed.
pub(crate) fn chromium(test: &str) -> Option<&'static Path> {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        eprintln!("SKIP {test}: /usr/bin/chromium not installed (apt-get install chromium)");
        return None;
    }
    Some(chromium)
}

impl Browser {
    /// A new tab at `url`, with `Page` events on; its session id.
    pub(crate) fn open(&mut self, url: &str) -> String {
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}), None);
        let target_id = target["targetId"].as_str().expect("target id").to_owned();
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
            None,
        );
        let session = attached["sessionId"].as_str().expect("session").to_owned();
        self.call("Page.enable", json!({}), Some(&session));
        self.call("Page.navigate", json!({"url": url}), Some(&session));
        session
    }

    /// Evaluates `expr` until it gives something other than null, false, 0 or "" (at most
    /// `within`); that value.
    pub(crate) fn wait_eval(
        &mut self,
        session: &str,
        expr: &str,
        within: Duration,
        what: &str,
    ) -> Value {
        let started = Instant::now();
        loop {
            let v = self.eval(session, expr);
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(
                started.elapsed() < within,
                "the page never showed {what} within {within:?}: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the viewport, or of the whole page with `full_page`.
    pub(crate) fn screenshot(&mut self, session: &str, full_page: bool) -> Vec<u8> {
        let mut params = json!({"format": "png"});
        if full_page {
            // The whole page is laid out again without a scrollbar: the window's width.
            let m = self.call("Page.getLayoutMetrics", json!({}), Some(session));
            let width = self.eval(session, "window.innerWidth");
            params["captureBeyondViewport"] = json!(true);
            params["clip"] = json!({"x": 0, "y": 0, "width": width,
                                    "height": m["cssContentSize"]["height"], "scale": 1});
        }
        let shot = self.call("Page.captureScreenshot", params, Some(session));
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
            "{} bytes",
            png.len()
        );
        png
    }
}
