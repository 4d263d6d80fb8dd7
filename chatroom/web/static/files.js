// Receiving a shared file (PROTOCOL.md, "Sharing files"): accept an offer, store the
// chunks in order, acknowledge them (the server paces the sender by our acks), check
// the SHA-256 of the whole, and only then offer it as a download.  Hashing is our own
// (sha256.js), piece by piece: it works on plain http:// LAN pages, where WebCrypto does
// not exist, and never needs the whole file at once.
import { Sha256, hashBlob } from "./sha256.js";

// A name to save under: no folders, no hidden or empty names (the sender chose it).
export function safeName(name) {
  const base = name.split(/[\\/]/).pop().replace(/[\u0000-\u001f\u007f<>:"|?*]/g, "_").replace(/^[.\s]+/, "");
  return base.slice(0, 120) || "download";
}

// A received file is folded into a Blob every this many bytes, not held as chunks.
const PART = 4 * 1024 * 1024;

export class Receiver {
  constructor(session, onDone) {
    this.session = session;
    this.onDone = onDone; // (offer, ok, text, url)
    this.offers = new Map();
    this.active = new Map();
  }

  offered(offer) { this.offers.set(offer.transfer, offer); }

  accept(transfer) {
    const offer = this.offers.get(transfer);
    if (!offer) return;
    this.active.set(transfer, { offer, parts: [], chunks: [], held: 0, received: 0, hash: new Sha256() });
    this.session.send({ type: "accept_file", transfer });
  }

  reject(transfer) {
    this.offers.delete(transfer);
    this.session.send({ type: "reject_file", transfer });
  }

  async data(message, body) {
    const t = this.active.get(message.transfer);
    if (!t || message.offset !== t.received) return; // a new round starts from 0: see update()
    if (body) {
      t.chunks.push(body);
      t.hash.update(body);
      t.received += body.byteLength;
      t.held += body.byteLength;
      if (t.held >= PART) {  // into a Blob as it comes: the browser keeps a large one out of the page's memory
        t.parts.push(new Blob(t.chunks));
        t.chunks = [];
        t.held = 0;
      }
    }
    this.session.send({ type: "file_ack", transfer: message.transfer, offset: t.received });
    if (t.received >= t.offer.size) await this.finish(message.transfer, t);
  }

  update(message) {
    const t = this.active.get(message.transfer);
    if (t && message.over) this.active.delete(message.transfer);
  }

  async finish(transfer, t) {
    this.active.delete(transfer);
    const blob = new Blob([...t.parts, ...t.chunks]);  // (the browser may keep a big one on disk)
    t.parts = t.chunks = [];
    const digest = t.hash.hex();
    const ok = digest === t.offer.sha256 && blob.size === t.offer.size;
    this.session.send({ type: "file_done", transfer, ok, reason: ok ? "" : "the SHA-256 did not match" });
    this.onDone(t.offer, ok, ok ? "SHA-256 verified" : "the SHA-256 did not match: not kept",
      ok ? URL.createObjectURL(blob) : null);
  }
}

// Offering a file: hash it, offer it, then send each round from byte 0 as far as the
// server's credit allows (the slowest receiver's acks move the credit).
const CHUNK = 64 * 1024;

export class Sender {
  constructor(session, say) {
    this.session = session;
    this.say = say;             // (text, error) -> a line on the page
    this.byId = new Map();      // our offer id -> file (until the server numbers it)
    this.byTransfer = new Map(); // transfer -> { file, round, credit, sent, sending }
  }

  async offer(file, room) {
    if (file.size > (1 << 24)) this.say(`hashing “${file.name}”…`);
    const sha256 = await hashBlob(file);
    const id = this.session.nextId();
    this.byId.set(id, file);
    this.session.send({ type: "offer_file", id, name: file.name, size: file.size, sha256, room });
  }

  offered(m) {   // the server's copy of our offer, with its number
    const file = this.byId.get(m.id);
    if (!file) return;
    this.byId.delete(m.id);
    this.byTransfer.set(m.transfer, { file, round: 0, credit: 0, sent: 0, sending: false });
    this.say(`you offer “${file.name}” to ${m.recipients} ${m.recipients === 1 ? "person" : "people"}`);
  }

  start(m) {     // file_send: a round begins, from byte 0
    const t = this.byTransfer.get(m.transfer);
    if (!t) return;
    Object.assign(t, { round: m.round, credit: m.credit, sent: 0 });
    this.pump(m.transfer, t);
  }

  credit(m) {
    const t = this.byTransfer.get(m.transfer);
    if (!t || m.round !== t.round) return;
    t.credit = Math.max(t.credit, m.credit);
    this.pump(m.transfer, t);
  }

  update(m) {
    const t = this.byTransfer.get(m.transfer);
    if (!t) return;
    if (m.event === "received") this.say(`${m.nick} received “${t.file.name}”`);
    if (m.event === "failed" || m.event === "rejected") this.say(`${m.nick}: ${m.event}${m.reason ? ` (${m.reason})` : ""}`);
    if (m.over) this.byTransfer.delete(m.transfer);
  }

  async pump(transfer, t) {
    if (t.sending) return;
    t.sending = true;
    try {
      const size = t.file.size;
      if (size === 0 && t.sent === 0 && t.credit >= 0) {   // an empty file is one empty chunk
        this.session.sendFrame({ type: "file_chunk", transfer, round: t.round, offset: 0 }, new ArrayBuffer(0));
        t.sent = -1;
        return;
      }
      while (t.sent >= 0 && t.sent < size && t.sent < t.credit && this.byTransfer.get(transfer) === t) {
        const round = t.round;
        const end = Math.min(size, t.sent + CHUNK, t.credit);
        const body = await t.file.slice(t.sent, end).arrayBuffer();
        if (round !== t.round) continue; // a new round began meanwhile: it starts again from 0
        this.session.sendFrame({ type: "file_chunk", transfer, round, offset: t.sent }, body);
        t.sent = end;
      }
    } finally {
      t.sending = false;
    }
  }
}
