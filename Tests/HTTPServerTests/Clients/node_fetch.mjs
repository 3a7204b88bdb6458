// Drives a test server with Node's built-in fetch (undici), as a web application would.
// Usage: node node_fetch.mjs PORT
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

const base = `http://127.0.0.1:${process.argv[2]}`;

// undici's pool may open a second connection, but both are kept alive and reused.
const ports = new Set();
for (let i = 0; i < 10; i++) ports.add(await (await fetch(`${base}/whoami`)).text());
assert.ok(ports.size <= 2, `fetch used ${ports.size} connections for 10 requests`);

const json = JSON.stringify({ prompt: "a photo of a cat", samples: "1", base64: true });
const echoed = await fetch(`${base}/echo`, { method: "POST", headers: { "Content-Type": "application/json" }, body: json });
assert.equal(echoed.status, 200);
assert.equal(echoed.headers.get("content-type"), "application/json");
assert.deepEqual(await echoed.json(), JSON.parse(json));

const big = randomBytes(1 << 20);
const bigEcho = Buffer.from(await (await fetch(`${base}/echo`, { method: "POST", body: big })).arrayBuffer());
assert.ok(bigEcho.equals(big), "echo of 1 MiB");

const missing = await fetch(`${base}/missing`);
assert.equal(missing.status, 404);
assert.deepEqual(await missing.json(), { error: "Not Found" });

const streamed = await fetch(`${base}/stream/100000`);
assert.equal((await streamed.arrayBuffer()).byteLength, 100000);
console.log("fetch: ok");
