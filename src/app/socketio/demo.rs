//! The demo server `synack serve` runs.

use serde_json::{json, Value};

use super::*;

/// `synack serve`'s demo: on `/`, `chat message` goes to everyone, `echo` is acknowledged
/// with its payload, `join` puts the socket in a room (acknowledged with the room name),
/// and `room message` `{"room":…,…}` goes to that room. `/chat` has `echo` too, to show a
/// custom namespace.
pub fn demo(config: Config) -> SocketIo {
    let io = SocketIo::new(config);
    let all = io.clone();
    io.on_connection(move |socket| {
        let io = all.clone();
        socket.on("chat message", move |data, _| io.emit("chat message", data));
        socket.on("echo", |data, ack| {
            if let Some(ack) = ack {
                ack.send(data);
            }
        });
        let me = socket.clone();
        socket.on("join", move |data, ack| {
            if let Some(room) = data.as_str() {
                me.join(room);
                if let Some(ack) = ack {
                    ack.send(json!(room));
                }
            }
        });
        let io = all.clone();
        socket.on("room message", move |data, _| {
            if let Some(room) = data.get("room").and_then(Value::as_str) {
                io.to(room).emit("room message", data.clone());
            }
        });
    });
    io.of("/chat").on_connection(|socket| {
        socket.on("echo", |data, ack| {
            if let Some(ack) = ack {
                ack.send(data);
            }
        });
    });
    io
}
