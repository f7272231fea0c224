#!/usr/bin/env node
// The official socket.io-client (v4, installed by tests/tun_socketio.rs into a temp dir
// given as NODE_PATH) against synack's Socket.IO server, with default options: it starts
// on HTTP long-polling and upgrades to WebSocket. Prints one JSON line of results, or
// says what went wrong and exits 1. Every wait has a timeout.
//
//     NODE_PATH=/tmp/x/node_modules node tests/clients/sio_node.js [http://10.7.0.2]

const { isDeepStrictEqual } = require("node:util");
const { io } = require("socket.io-client");

const BASE = process.argv[2] || "http://10.7.0.2";
const TIMEOUT = 10000;

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

function within(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT)),
  ]);
}

function connect(nsp = "") {
  const socket = io(BASE + nsp, { reconnection: false, timeout: TIMEOUT });
  // The engine starts at once; the upgrade may finish before the CONNECT reply does.
  socket.firstTransport = socket.io.engine.transport.name;
  socket.io.engine.on("upgrade", (t) => (socket.upgradedTo = t.name));
  const inbox = [];
  const waiters = [];
  for (const name of ["chat message", "room message"]) {
    socket.on(name, (data) => {
      const w = waiters.findIndex((x) => x.name === name);
      if (w >= 0) waiters.splice(w, 1)[0].resolve(data);
      else inbox.push([name, data]);
    });
  }
  socket.next = (name) => {
    const i = inbox.findIndex((x) => x[0] === name);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0][1]);
    return within(new Promise((resolve) => waiters.push({ name, resolve })), name);
  };
  socket.inbox = inbox;
  return within(
    new Promise((resolve, reject) => {
      socket.on("connect", () => resolve(socket));
      socket.on("connect_error", (e) => reject(e));
    }),
    "connect",
  );
}

function upgraded(socket) {
  if (socket.upgradedTo) return Promise.resolve();
  return within(new Promise((resolve) => socket.io.engine.once("upgrade", () => resolve())), "upgrade");
}

async function main() {
  const result = {};
  const a = await connect();
  result.first_transport = a.firstTransport;
  const b = await connect();
  result.connected = 2;
  await upgraded(a);
  await upgraded(b);
  result.upgraded_transport = a.upgradedTo;

  const payload = { n: 1, text: "héllo", list: [1, 2, 3] };
  const echoed = await within(a.emitWithAck("echo", payload), "echo ack");
  check(isDeepStrictEqual(echoed, payload), `echo ack: ${JSON.stringify(echoed)}`);
  result.echo_ack = true;

  a.emit("chat message", "hi from node");
  check((await a.next("chat message")) === "hi from node", "a's broadcast");
  check((await b.next("chat message")) === "hi from node", "b's broadcast");
  result.broadcast = true;

  check((await within(a.emitWithAck("join", "r1"), "join ack")) === "r1", "join ack");
  b.emit("room message", { room: "r1", text: "to r1" });
  const got = await a.next("room message");
  check(got.text === "to r1", `room message: ${JSON.stringify(got)}`);
  await new Promise((r) => setTimeout(r, 300));
  check(!b.inbox.some((x) => x[0] === "room message"), "b is not in r1");
  result.room = true;

  const c = await connect("/chat");
  const back = await within(c.emitWithAck("echo", [1, "x"]), "/chat echo");
  check(JSON.stringify(back) === '[1,"x"]', `/chat echo: ${JSON.stringify(back)}`);
  c.disconnect();
  result.namespace = true;

  const reasons = [];
  b.on("disconnect", (r) => reasons.push(r));
  b.disconnect();
  check(reasons[0] === "io client disconnect", `b's reason: ${reasons}`);
  a.emit("chat message", "after b left");
  check((await a.next("chat message")) === "after b left", "a still served");
  a.disconnect();
  result.disconnected = true;
  console.log(JSON.stringify(result));
  process.exit(0);
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
