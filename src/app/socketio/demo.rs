//! The servers built from the API: the demo `synack serve` runs, and the one the official
//! protocol test suite expects.

use serde_json::Value;

use super::*;

/// `synack serve`'s demo: on `/`, `chat message` goes to everyone, `echo` is acknowledged
/// with all its arguments, `join` puts the socket in a room (acknowledged with the room
/// name), and `room message` `{"room":…,…}` goes to that room. `/chat` has `echo` too, to
/// show a custom namespace.
pub fn demo(config: Config) -> SocketIo {
    let io = SocketIo::new(config);
    let all = io.clone();
    io.on_connection(move |socket| {
        let io = all.clone();
        socket.on("chat message", move |args, _| io.emit("chat message", args));
        socket.on("echo", echo);
        let me = socket.clone();
        socket.on("join", move |args, ack| {
            if let Some(room) = args.first().as_str() {
                me.join(room);
                if let Some(ack) = ack {
                    ack.send(room);
                }
            }
        });
        let io = all.clone();
        socket.on("room message", move |args, _| {
            if let Some(room) = args.first().get("room").and_then(Value::as_str) {
                io.to(room).emit("room message", args.clone());
            }
        });
    });
    io.of("/chat").on_connection(|socket| socket.on("echo", echo));
    io
}

fn echo(args: Args, ack: Option<Ack>) {
    if let Some(ack) = ack {
        ack.send(args);
    }
}

/// What the reference server of the socket.io-protocol test suite serves, on `/` and
/// `/custom`: on connection, `auth` with the CONNECT payload; `message` → `message-back`
/// with every argument; `message-with-ack` acknowledged with every argument.
pub fn reference(config: Config) -> SocketIo {
    let io = SocketIo::new(config);
    for nsp in ["/", "/custom"] {
        io.of(nsp).on_connection(|socket| {
            socket.emit("auth", socket.auth().clone());
            let me = socket.clone();
            socket.on("message", move |args, _| me.emit("message-back", args));
            socket.on("message-with-ack", echo);
        });
    }
    io
}
