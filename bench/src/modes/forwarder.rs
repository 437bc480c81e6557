//! `loadgen forwarder` (hidden): a proxy that only moves bytes, for the harness.
//!
//! Every connection it accepts is joined to a new TCP connection to `--upstream` and the bytes
//! are copied both ways (`tokio::io::copy_bidirectional`): no HTTP, no WebSocket framing, no
//! checks. It pays what any proxy on this machine pays (two more sockets, two more reads and
//! writes per message, a third process on the cores), so `loadgen proxy` can tell that floor
//! from what `messaging-mock proxy` adds on top.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Args)]
pub struct ForwarderArgs {
    /// Where to forward every connection (`host:port`).
    #[arg(long, value_name = "HOST:PORT")]
    upstream: String,
}

pub async fn run(args: ForwarderArgs) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the forwarder's port")?;
    let addr = listener.local_addr()?;
    let ready = serde_json::json!({
        "ready": true,
        "base_url": format!("http://{addr}"),
        "ws_url": format!("ws://{addr}/ws"),
    });
    println!("{ready}");
    loop {
        let (mut client, _) = listener.accept().await.context("accepting")?;
        let upstream = args.upstream.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}
