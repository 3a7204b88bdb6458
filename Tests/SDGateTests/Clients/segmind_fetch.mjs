// A Node client written like Segmind's documentation snippets, with the built-in fetch.
// Usage: node segmind_fetch.mjs PORT KEY
import assert from "node:assert/strict";

const api_key = process.argv[3];
const url = `http://127.0.0.1:${process.argv[2]}/v1/sdxl1.0-txt2img`;

const data = {
  prompt: "cinematic film still, a lighthouse at dusk",
  negative_prompt: "ugly, tiling, poorly drawn hands",
  style: "base",
  samples: 1,
  scheduler: "UniPC",
  num_inference_steps: 25,
  guidance_scale: 8,
  strength: 0.2,
  high_noise_fraction: 0.8,
  seed: 468685,
  img_width: 896,
  img_height: 1152,
  refiner: true,
  base64: false,
};

const response = await fetch(url, {
  method: "POST",
  headers: { "x-api-key": api_key, "Content-Type": "application/json" },
  body: JSON.stringify(data),
});
assert.equal(response.status, 200);
assert.equal(response.headers.get("content-type"), "image/jpeg");
assert.equal(response.headers.get("x-seed-value"), "468685");
assert.match(response.headers.get("x-request-id"), /^[0-9a-f]{16}$/);
assert.equal(response.headers.get("x-cost"), "0.008");
assert.ok(Number(response.headers.get("x-generation-time")) > 0);
const bytes = new Uint8Array(await response.arrayBuffer());
assert.deepEqual([...bytes.slice(0, 2)], [0xff, 0xd8]);

const bad = await fetch(url, {
  method: "POST",
  headers: { "x-api-key": api_key, "Content-Type": "application/json" },
  body: JSON.stringify({ ...data, scheduler: "Warp Drive" }),
});
assert.equal(bad.status, 422);
assert.match((await bad.json()).error, /^scheduler: must be one of/);

const form = await fetch(url, {
  method: "POST",
  headers: { "x-api-key": api_key, "Content-Type": "application/x-www-form-urlencoded" },
  body: "prompt=x",
});
assert.equal(form.status, 406);
assert.deepEqual(await form.json(), { error: "Content-Type must be application/json" });
console.log("fetch: ok");
