//! A scripted fake master on a raw TCP socket, for what a single real `tepui dev` cannot show:
//! standbys answering 503 and 307, malformed records, silent streams, refusals. Each request is
//! answered by the next `Reply` of the script (the last one repeats); request bodies are kept so a
//! test can check what the client sent.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Reply {
    /// A plain response: status line text (`"503 Service Unavailable"`), extra headers, body.
    Plain(&'static str, Vec<(String, String)>, String),
    /// `200 OK`, chunked, with `Mesos-Stream-Id` (if given); one chunk per piece of raw bytes, then
    /// the connection stays open (until the server is dropped) or closes.
    Stream {
        stream_id: Option<String>,
        chunks: Vec<Vec<u8>>,
        keep_open: bool,
    },
}

pub struct FakeMaster {
    pub port: u16,
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeMaster {
    pub async fn start(script: Vec<Reply>) -> FakeMaster {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake master");
        let port = listener.local_addr().expect("local addr").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let recorded = bodies.clone();
        let task = tokio::spawn(async move {
            let mut served = 0usize;
            let mut open = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                let reply = script[served.min(script.len() - 1)].clone();
                served += 1;
                // Connections belong to the server task: a kept-open stream dies with it.
                open.spawn(serve(socket, reply, recorded.clone()));
            }
        });
        FakeMaster { port, bodies, task }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

async fn serve(mut socket: TcpStream, reply: Reply, bodies: Arc<Mutex<Vec<serde_json::Value>>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    if let Ok(body) = serde_json::from_slice(&buffer[head_end..head_end + length]) {
        if let Ok(mut bodies) = bodies.lock() {
            bodies.push(body);
        }
    }
    match reply {
        Reply::Plain(status, headers, body) => {
            let mut out = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            let _ = socket.write_all(out.as_bytes()).await;
        }
        Reply::Stream {
            stream_id,
            chunks,
            keep_open,
        } => {
            let mut out = String::from("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n");
            if let Some(id) = stream_id {
                out.push_str(&format!("Mesos-Stream-Id: {id}\r\n"));
            }
            out.push_str("\r\n");
            if socket.write_all(out.as_bytes()).await.is_err() {
                return;
            }
            for piece in chunks {
                let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                framed.extend_from_slice(&piece);
                framed.extend_from_slice(b"\r\n");
                if socket.write_all(&framed).await.is_err() {
                    return;
                }
            }
            if keep_open {
                std::future::pending::<()>().await;
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        }
    }
}

/// One RecordIO record of `json`.
pub fn record(json: &serde_json::Value) -> Vec<u8> {
    proto::recordio::encode(json.to_string().as_bytes())
}

pub fn subscribed(framework_id: &str, heartbeat_secs: f64) -> Vec<u8> {
    record(&serde_json::json!({
        "type": "SUBSCRIBED",
        "subscribed": {"framework_id": {"value": framework_id}, "heartbeat_interval_seconds": heartbeat_secs}
    }))
}
