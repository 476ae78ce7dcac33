//! A browser's part, as little of it as a measurement needs: sign in, open a WebSocket from a
//! chosen loopback address (so per-address limits see many clients, as they would in production),
//! subscribe, and read frames.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest},
};

pub type Socket = WebSocketStream<TcpStream>;

pub const PASSWORD: &str = "livedash-demo";

/// Signs in and returns the session cookie.
pub async fn login(http: &reqwest::Client, server: &str, email: &str) -> anyhow::Result<String> {
    let response = http
        .post(format!("http://{server}/api/auth/login"))
        // A client that is not a browser says where it is from: state changes need it.
        .header("origin", format!("http://{server}"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("sign-in as {email}: {}", response.status());
    }
    let cookie = response.headers().get("set-cookie").context("no session cookie")?.to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

/// The `n`th client's own loopback address: 127.1.x.y.
pub fn source(n: usize) -> IpAddr {
    IpAddr::from([127, 1, (n / 250) as u8, (n % 250 + 1) as u8])
}

/// Opens a WebSocket from `from`; the server's answer to the upgrade, or the error.
pub async fn open(server: &str, cookie: &str, from: IpAddr) -> anyhow::Result<Socket> {
    let target: SocketAddr = server.parse()?;
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(target).await?;
    tcp.set_nodelay(true)?;
    let mut request = format!("ws://{server}/api/ws").into_client_request()?;
    request.headers_mut().insert("cookie", cookie.parse()?);
    request.headers_mut().insert("origin", format!("http://{server}").parse()?);
    let (socket, _) = tokio_tungstenite::client_async(request, tcp).await?;
    Ok(socket)
}

pub async fn send(socket: &mut Socket, message: &protocol::ClientMessage) -> anyhow::Result<()> {
    socket.send(Message::text(message.to_json())).await?;
    Ok(())
}

pub fn subscribe(widget: &str, topic: &str, resume_token: Option<String>) -> protocol::ClientMessage {
    protocol::ClientMessage::Subscribe { widget_id: widget.into(), topic: topic.into(), resume_token }
}

/// The next text frame as JSON; `None` when the socket closed or failed.
pub async fn next_json(socket: &mut Socket) -> Option<serde_json::Value> {
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}
