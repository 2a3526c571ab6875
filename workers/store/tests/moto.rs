//! moto's S3 server for tests (shared by the store's and the CLI's tests).

/// moto's S3 server on a loopback port with one bucket; stopped on drop. `None` (skip) when
/// `moto_server` is not installed (`pip install "moto[server]"`), a failure under CI.
#[derive(Debug)]
pub(crate) struct Moto {
    child: std::process::Child,
    pub(crate) port: u16,
}

impl Moto {
    pub(crate) fn start(bucket: &str) -> Option<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = match std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "moto_server required under CI: {e}"
                );
                eprintln!("SKIPPED: moto_server not found ({e}); pip install \"moto[server]\"");
                return None;
            }
        };
        let moto = Moto { child, port };
        // Wait for it, then create the bucket (moto does not check signatures).
        let started = std::time::Instant::now();
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                write!(
                    s,
                    "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                // A server still starting may accept and close without an answer: try again
                // until the deadline; any answer but 200 is a failure.
                if !reply.is_empty() {
                    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
                    return Some(moto);
                }
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "moto_server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub(crate) fn url(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "s3://{bucket}/{prefix}?endpoint=http://127.0.0.1:{}&region=us-east-1&allow_http=true",
            self.port
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
