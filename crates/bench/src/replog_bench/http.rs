//! The HTTP client side of the replog bench, the same for tepui's endpoint and etcd's v3 JSON
//! gateway: etcd-shaped `PUT` bodies (base64 key and value) posted by one keep-alive client, so both
//! systems pay the same client hop.

use super::drivers::{
    concurrent, print_sequential, print_throughput, self_cpu, sequential, throughput,
};
use super::etcd::EtcdCluster;
use super::replicas::TepuiCluster;
use super::report::SystemFigures;
use super::{Settings, B64};
use crate::stats::summarize;
use anyhow::{bail, Context, Result};
use base64::Engine;
use std::sync::Arc;

fn put_body(prefix: &str, i: usize, value_b64: &str) -> String {
    let key = B64.encode(format!("bench/{prefix}/{i:08}"));
    format!("{{\"key\":\"{key}\",\"value\":\"{value_b64}\"}}")
}

async fn put(client: &reqwest::Client, url: &str, body: String) -> Result<()> {
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("POST {url}: reading the answer"))?;
    if !status.is_success() {
        bail!(
            "POST {url}: {status}: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    if !text.contains("\"header\"") {
        bail!(
            "POST {url}: unexpected answer: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    Ok(())
}

pub(super) async fn http_system(
    name: &str,
    client: &reqwest::Client,
    url: &str,
    value_b64: &Arc<str>,
    s: &Settings,
    etcd: Option<&mut EtcdCluster>,
    tepui: Option<&TepuiCluster>,
) -> Result<SystemFigures> {
    let make = |phase: &'static str| {
        let (client, url, value_b64) = (client.clone(), Arc::<str>::from(url), value_b64.clone());
        let prefix = format!("{name}-{phase}");
        move |i: usize| {
            let (client, url, body) = (
                client.clone(),
                url.clone(),
                put_body(&prefix, i, &value_b64),
            );
            async move { put(&client, &url, body).await }
        }
    };
    let mut etcd = etcd;
    sequential(s.warmup, make("warmup1"))
        .await
        .context("warmup")?;
    let latencies = sequential(s.appends, make("seq")).await?;
    let seq = summarize(&latencies);
    print_sequential(&seq, s.appends, None);
    if let Some(c) = tepui {
        c.truncate();
    }
    if let Some(e) = etcd.as_deref_mut() {
        e.check_alive()?;
    }
    sequential(s.warmup, make("warmup2"))
        .await
        .context("warmup")?;
    let etcd_cpu0 = etcd.as_deref().map(|e| e.cpu());
    let cpu0 = self_cpu();
    let (elapsed, latencies) =
        concurrent(s.throughput_appends, s.concurrency, make("tput")).await?;
    let mut cpu = self_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    if let Some(e) = etcd.as_deref() {
        cpu = match (cpu, e.cpu(), etcd_cpu0.flatten()) {
            (Some(c), Some(b), Some(a)) => Some(c + b.saturating_sub(a)),
            _ => None,
        };
    }
    let t = throughput(
        s.throughput_appends,
        s.value_bytes,
        elapsed,
        &latencies,
        cpu,
    );
    print_throughput(&t, s.concurrency);
    if let Some(c) = tepui {
        c.truncate();
    }
    Ok(SystemFigures {
        sequential: seq,
        throughput: t,
    })
}
