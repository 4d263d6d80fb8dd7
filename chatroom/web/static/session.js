// The client's side of PROTOCOL.md over a WebSocket: hello, resume, exactly-once
// sending (ids, resent after a reconnect until acknowledged), keepalive, reconnect.
// No DOM here: events go to the handler given to the constructor.
import { encodeFrame, decodeFrame } from "./framing.js";

export const VERSION = "1.5";
const encoder = new TextEncoder();

const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text) => new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

// PROTOCOL.md, "Room password": PBKDF2 and HMAC-SHA256 from WebCrypto; the password
// itself never leaves the page.
async function roomKey(password, salt) {
  const material = await crypto.subtle.importKey("raw", encoder.encode(password.normalize("NFKC")), "PBKDF2",
    false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: 200000 },
    material, 256);
  return crypto.subtle.importKey("raw", bits, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

async function proof(key, label, first, second) {
  return hex(await crypto.subtle.sign("HMAC", key, concat(encoder.encode(label), first, second)));
}
const FATAL = new Set(["version_mismatch", "invalid_nick", "auth_failed", "auth_required", "kicked", "banned"]);

export class ChatSession {
  constructor(url, nick, room, onEvent, password = "") {
    this.url = url;
    this.password = password;
    this.expectedProof = null; // the server's proof for this exchange, once we gave ours
    this.roomKeys = new Map(); // room (lower case) -> the key the person gave for it (1.5)
    this.roomProofs = new Map(); // room (lower case) -> the server's proof expected in "joined"
    this.nick = nick;
    this.room = room || "lobby";
    this.onEvent = onEvent;
    this.token = null;
    this.seen = {};           // room -> newest sequence number shown
    this.rooms = new Set();
    this.pending = new Map(); // id -> message not yet acknowledged (resent after a reconnect)
    this.prefix = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
    this.counter = 0;
    this.backoff = 1000;
    this.stopped = false;
    this.open = false;
  }

  connect() {
    this.emit({ type: "state", state: "connecting" });
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => this.send(this.hello());
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = () => this.closed();
  }

  hello() {
    const hello = { type: "hello", version: VERSION, nick: this.nick, room: this.room, client: "chatroom web" };
    if (this.token) Object.assign(hello, { resume: this.token, seen: this.seen });
    this.expectedProof = null;
    if (this.password) {
      this.nonce = crypto.getRandomValues(new Uint8Array(32));
      hello.nonce = hex(this.nonce);
    }
    return hello;
  }

  // A room's key (PROTOCOL.md, "Running a room"): proved as the password is; the key
  // never leaves the page.
  async keyChallenged(m) {
    const given = this.roomKeys.get(m.room.toLowerCase());
    if (given === undefined) return;  // (the key_needed error said what to do)
    if (!crypto.subtle) {
      this.emit({ type: "local_error", text: "this browser proves a room's key only on https:// pages or localhost" });
      return;
    }
    const key = await roomKey(given, unhex(m.salt));
    const mine = crypto.getRandomValues(new Uint8Array(32));
    this.roomProofs.set(m.room.toLowerCase(), await proof(key, "chatroom-server\0", mine, unhex(m.nonce)));
    this.send({ type: "join", room: m.room, nonce: hex(mine), proof: await proof(key, "chatroom-client\0",
      unhex(m.nonce), mine) });
  }

  // "SALT:VERIFIER" for /mode +k KEY: the key derived with a fresh salt, never the key.
  async keyVerifier(given) {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const material = await crypto.subtle.importKey("raw", encoder.encode(given.normalize("NFKC")), "PBKDF2",
      false, ["deriveBits"]);
    const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: 200000 },
      material, 256);
    return `${hex(salt)}:${hex(bits)}`;
  }

  async challenged(m) {
    if (!this.password) { this.stopped = true; this.emit({ type: "password_needed" }); this.ws.close(); return; }
    if (!crypto.subtle) {
      this.stopped = true;
      this.emit({ type: "local_error", text: "this room has a password, and this browser computes the password proof " +
        "only on https:// pages (or on the host's own machine): ask the host to run the server with TLS" });
      this.ws.close();
      return;
    }
    const key = await roomKey(this.password, unhex(m.salt));
    const serverNonce = unhex(m.nonce);
    this.expectedProof = await proof(key, "chatroom-server\0", this.nonce, serverNonce);
    this.send({ type: "auth", proof: await proof(key, "chatroom-client\0", serverNonce, this.nonce) });
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeFrame(message));
  }

  sendFrame(message, body) {  // a frame with a body (file chunks)
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeFrame(message, body));
  }

  nextId() { return `${this.prefix}-${++this.counter}`; }

  // A chat message: kept until acknowledged, sent again (same id) after a reconnect.
  chat(type, fields) {
    const message = { type, id: this.nextId(), ...fields };
    this.pending.set(message.id, message);
    this.emit({ type: "pending", message });
    if (this.open) this.send(message);
    return message;
  }

  say(text, room) { return this.chat("say", { text, room }); }

  // Typing notices (1.4): only to a server that speaks 1.4, never kept or resent.
  typing(room, state) {
    if (this.open && Number((this.serverVersion || "1.0").split(".")[1]) >= 4) {
      this.send({ type: "typing", room, state });
    }
  }
  action(text, room) { return this.chat("action", { text, room }); }
  direct(to, text) { return this.chat("direct", { to, text }); }

  receive(data) {
    let frame;
    try { frame = decodeFrame(data); } catch (error) { this.emit({ type: "local_error", text: String(error) }); return; }
    const m = frame.header;
    if (frame.body) m.data = frame.body; // file_data: the bytes
    switch (m.type) {
      case "welcome":
        if (this.password && m.proof !== this.expectedProof) { // a room that does not know the password
          this.stopped = true;
          this.emit({ type: "local_error", text: "this server let us in without proving it knows the room password: " +
            "it is not the room you think (check the address with the host)" });
          this.ws.close();
          return;
        }
        return this.welcomed(m);
      case "challenge": if (m.room) this.keyChallenged(m); else this.challenged(m); return;
      case "ping": return this.send({ type: "pong", token: m.token });
      case "ack": this.pending.delete(m.id); break;
      case "error":
        if (m.id) this.pending.delete(m.id);
        if (m.code === "resume_refused") { this.token = null; this.send(this.hello()); return; }
        if (m.code === "auth_required") { this.stopped = true; this.emit({ type: "password_needed" }); return; }
        if (m.fatal && FATAL.has(m.code)) this.stopped = true;
        break;
      case "chat":
        if (m.seq <= (this.seen[m.room] || 0)) return; // shown already: exactly once
        this.seen[m.room] = m.seq;
        break;
      case "history":
        m.messages = m.messages.filter((c) => c.seq > (this.seen[c.room] || 0) || !m.replay);
        for (const c of m.messages) this.seen[c.room] = Math.max(this.seen[c.room] || 0, c.seq);
        break;
      case "joined": {
        const expected = this.roomProofs.get(m.room.toLowerCase());
        this.roomProofs.delete(m.room.toLowerCase());
        if (expected !== undefined && m.proof !== expected) {
          this.emit({ type: "local_error", text: `${m.room}: the server did not prove it knows the room's key` });
        }
      }
        this.rooms.add(m.room);
        m.history = (m.history || []).filter((c) => c.seq > (this.seen[c.room] || 0));
        for (const c of m.history || []) this.seen[c.room] = Math.max(this.seen[c.room] || 0, c.seq);
        if (!m.resumed) this.seen[m.room] = Math.max(this.seen[m.room] || 0, m.last_seq);
        break;
      case "parted": this.rooms.delete(m.room); break;
      case "presence":
        if (m.event === "nick" && m.nick === this.nick) this.nick = m.new_nick;
        break;
    }
    this.emit(m);
  }

  welcomed(m) {
    this.open = true;
    this.backoff = 1000;
    this.token = m.resume_token;
    this.serverVersion = m.version;
    this.nick = m.nick;
    this.limits = m.limits;
    // After a lost session (a server restart), the history comes again: show only what is new.
    m.history = (m.history || []).filter((c) => c.seq > (this.seen[c.room] || 0));
    const before = [...this.rooms].filter((r) => r.toLowerCase() !== (m.room || "").toLowerCase());
    this.rooms = new Set();
    if (m.room) { this.rooms.add(m.room); this.room = m.room; }
    for (const c of m.history || []) this.seen[c.room] = Math.max(this.seen[c.room] || 0, c.seq);
    if (!m.resumed && m.room) this.seen[m.room] = Math.max(this.seen[m.room] || 0, m.last_seq);
    this.emit({ type: "state", state: "connected" });
    this.emit(m);
    for (const message of this.pending.values()) this.send(message); // exactly once: the server knows the ids
    if (!m.resumed) for (const room of before) this.send({ type: "join", room }); // back where we were
  }

  closed() {
    this.open = false;
    if (this.stopped) { this.emit({ type: "state", state: "closed" }); return; }
    const wait = this.backoff * (0.5 + Math.random() / 2);
    this.backoff = Math.min(this.backoff * 2, 30000);
    this.emit({ type: "state", state: "disconnected", retryIn: wait });
    setTimeout(() => this.connect(), wait);
  }

  emit(event) { this.onEvent(event); }

  leave(reason = "quit") {
    this.stopped = true;
    this.send({ type: "bye", reason });
    if (this.ws) this.ws.close(1000);
  }
}
