// sha256.js against FIPS 180-4's examples and Node's own SHA-256, fed in any pieces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Sha256, hashBlob } from "../../chatroom/web/static/sha256.js";

const sha = (bytes) => createHash("sha256").update(bytes).digest("hex");

test("the standard's examples", () => {
  assert.equal(new Sha256().hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(new Sha256().update(new TextEncoder().encode("abc")).hex(),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  assert.equal(new Sha256().update(new TextEncoder().encode(two)).hex(),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
});

test("every length around the block and padding edges, split anywhere, is Node's digest", () => {
  const data = randomBytes(300);
  for (let n = 0; n <= 300; n++) {
    const bytes = data.subarray(0, n);
    const cut = Math.floor(n / 3);
    const pieces = new Sha256().update(bytes.subarray(0, cut)).update(bytes.subarray(cut, n - 1))
      .update(bytes.subarray(Math.max(cut, n - 1), n));
    assert.equal(pieces.hex(), sha(bytes), `length ${n}`);
  }
});

test("a few megabytes in uneven pieces, and a Blob read a piece at a time", async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const hash = new Sha256();
  for (let at = 0, step = 1; at < data.length; at += step, step = step * 3 + 1) hash.update(data.subarray(at, at + step));
  assert.equal(hash.hex(), sha(data));
  const seen = [];
  assert.equal(await hashBlob(new Blob([data]), (done) => seen.push(done)), sha(data));
  assert.deepEqual(seen.at(-1), data.length);
});
