// session.js: hello, exactly-once sending and resume, with a stand-in WebSocket (the
// real one is the browser's: tests/web drive Chromium for that).
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeFrame, decodeFrame } from "../../chatroom/web/static/framing.js";

class FakeSocket {
  static OPEN = 1;
  static made = [];
  constructor(url) { this.url = url; this.sent = []; this.readyState = 0; FakeSocket.made.push(this); }
  send(data) { this.sent.push(decodeFrame(data).header); }
  close() { this.readyState = 3; this.onclose?.(); }
  open() { this.readyState = 1; this.onopen(); }
  deliver(message) { this.onmessage({ data: encodeFrame(message) }); }
}
globalThis.WebSocket = FakeSocket;
globalThis.setTimeout = (fn) => { fn(); return 0; }; // reconnect at once
const { ChatSession } = await import("../../chatroom/web/static/session.js");

function welcome(extra = {}) {
  return { type: "welcome", version: "1.4", server: "s", nick: "ann", room: "lobby", topic: "", members: [],
    member_count: 1, history: [], last_seq: 5, limits: {}, resume_token: "tok", resumed: false, ...extra };
}

test("a session says hello in protocol 1.5 and shows each room message once", () => {
  FakeSocket.made = [];
  const seen = [];
  const s = new ChatSession("ws://x/ws", "ann", "lobby", (e) => seen.push(e));
  s.connect();
  const ws = FakeSocket.made[0];
  ws.open();
  assert.deepEqual(ws.sent[0], { type: "hello", version: "1.5", nick: "ann", room: "lobby", client: "chatroom web" });
  ws.deliver(welcome());
  const chat = { type: "chat", room: "lobby", seq: 6, ts: 1, nick: "bob", text: "hi", action: false };
  ws.deliver(chat);
  ws.deliver(chat); // a replayed copy
  assert.equal(seen.filter((e) => e.type === "chat").length, 1);
  ws.deliver({ type: "ping", token: "k" });
  assert.deepEqual(ws.sent.at(-1), { type: "pong", token: "k" });
});

test("what was typed offline goes out once after the reconnect, resuming with what was seen", () => {
  FakeSocket.made = [];
  const s = new ChatSession("ws://x/ws", "ann", "lobby", () => {});
  s.connect();
  const first = FakeSocket.made[0];
  first.open();
  first.deliver(welcome());
  first.deliver({ type: "chat", room: "lobby", seq: 6, ts: 1, nick: "bob", text: "hi", action: false });
  const typed = s.say("still here?", "lobby");
  assert.equal(first.sent.at(-1).id, typed.id);
  first.close(); // the line drops before the ack: a new socket at once (setTimeout stand-in)
  const second = FakeSocket.made[1];
  second.open();
  assert.deepEqual(second.sent[0].seen, { lobby: 6 });
  assert.equal(second.sent[0].resume, "tok");
  second.deliver(welcome({ resumed: true, missed: 0, last_seq: 6 }));
  const resent = second.sent.filter((m) => m.type === "say");
  assert.deepEqual(resent.map((m) => m.id), [typed.id]); // the same id: the server acks a duplicate, never twice
  second.deliver({ type: "ack", id: typed.id, ts: 2, seq: 7, room: "lobby", duplicate: true });
  assert.equal(s.pending.size, 0);
});

test("typing notices go only to a server that speaks 1.4, and only while connected", () => {
  for (const [version, expected] of [["1.4", 1], ["1.3", 0]]) {
    FakeSocket.made = [];
    const s = new ChatSession("ws://x/ws", "ann", "lobby", () => {});
    s.typing("lobby", "active");  // not connected yet: nothing
    s.connect();
    const ws = FakeSocket.made[0];
    ws.open();
    ws.deliver(welcome({ version }));
    s.typing("lobby", "active");
    const typing = ws.sent.filter((m) => m.type === "typing");
    assert.equal(typing.length, expected, version);
    if (expected) assert.deepEqual(typing[0], { type: "typing", room: "lobby", state: "active" });
  }
});
