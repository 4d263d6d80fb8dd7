// framing.js against PROTOCOL.md's worked example, with Node's own test runner.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeFrame, decodeFrame } from "../../chatroom/web/static/framing.js";

const hex = (buffer) => Buffer.from(buffer).toString("hex");

test("the say frame of PROTOCOL.md is 44 bytes, byte for byte", () => {
  const frame = encodeFrame({ type: "say", id: "m1", text: "héllo" });
  assert.equal(hex(frame), "00000028" + Buffer.from('{"type":"say","id":"m1","text":"héllo"}').toString("hex"));
  assert.equal(frame.byteLength, 44);
});

test("a frame with a body declares it and carries it raw", () => {
  const body = new Uint8Array([0, 255, 7]).buffer;
  const { header, body: back } = decodeFrame(encodeFrame({ type: "file_chunk", transfer: 1 }, body));
  assert.deepEqual(header, { type: "file_chunk", transfer: 1, body: 3 });
  assert.deepEqual([...new Uint8Array(back)], [0, 255, 7]);
});

test("a frame shorter than it says is refused, not half-read", () => {
  const frame = new Uint8Array(encodeFrame({ type: "ping", token: "x" }));
  assert.throws(() => decodeFrame(frame.slice(0, 3).buffer), /prefix/);
  assert.throws(() => decodeFrame(frame.slice(0, 10).buffer), /header/);
});

test("invalid UTF-8 in a header is an error, never replaced silently", () => {
  const bad = new Uint8Array([0, 0, 0, 3, 0x22, 0xff, 0x22]);
  assert.throws(() => decodeFrame(bad.buffer));
});
