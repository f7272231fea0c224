#!/usr/bin/env node
// Binary round trips with the official socket.io-client (installed by the test into a temp
// dir given as NODE_PATH) against `synack serve`'s demo, whose `echo` acknowledges with
// every argument it got: a Buffer, a string and a Buffer nested in an object go out, and
// must come back byte-exact, once on default options (polling, then the upgrade to
// WebSocket: binary frames) and once on polling only (base64 `b` packets). Prints one JSON
// line of results, or says what went wrong and exits 1. Every wait has a timeout.
//
//     NODE_PATH=/tmp/x/node_modules node tests/clients/sio_binary.js [http://10.7.0.2]

const crypto = require("node:crypto");
const { io } = require("socket.io-client");

const BASE = process.argv[2] || "http://10.7.0.2";
const TIMEOUT = 10000;

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

function within(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT)),
  ]);
}

async function roundTrip(options, label) {
  const socket = io(BASE, { reconnection: false, timeout: TIMEOUT, ...options });
  await within(new Promise((resolve, reject) => {
    socket.on("connect", resolve);
    socket.on("connect_error", reject);
  }), `${label}: connect`);
  if (!options.transports) {
    if (socket.io.engine.transport.name !== "websocket") {
      await within(new Promise((r) => socket.io.engine.once("upgrade", r)), `${label}: upgrade`);
    }
  }
  const big = crypto.randomBytes(200 * 1024);
  const small = Buffer.from([0, 1, 2, 253, 254, 255]);
  const back = await within(
    new Promise((resolve) => socket.emit("echo", big, "label", { nested: small, n: 7 }, (...args) => resolve(args))),
    `${label}: ack`,
  );
  if (back.length !== 3) fail(`${label}: ${back.length} ack arguments`);
  if (!Buffer.isBuffer(back[0]) || !back[0].equals(big)) fail(`${label}: the 200 KiB Buffer came back different`);
  if (back[1] !== "label") fail(`${label}: second argument ${JSON.stringify(back[1])}`);
  if (!Buffer.isBuffer(back[2].nested) || !back[2].nested.equals(small) || back[2].n !== 7) {
    fail(`${label}: nested Buffer: ${JSON.stringify(back[2])}`);
  }
  const transport = socket.io.engine.transport.name;
  socket.disconnect();
  return { transport, bytes: big.length + small.length };
}

async function main() {
  const result = {};
  result.default_options = await roundTrip({}, "default options");
  result.polling_only = await roundTrip({ transports: ["polling"] }, "polling only");
  console.log(JSON.stringify(result));
  process.exit(0);
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
