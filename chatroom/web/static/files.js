// Receiving a shared file (PROTOCOL.md, "Sharing files"): accept an offer, store the
// chunks in order, acknowledge them (the server paces the sender by our acks), check
// the SHA-256 of the whole, and only then offer it as a download.
const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

// A name to save under: no folders, no hidden or empty names (the sender chose it).
export function safeName(name) {
  const base = name.split(/[\\/]/).pop().replace(/[\u0000-\u001f\u007f<>:"|?*]/g, "_").replace(/^[.\s]+/, "");
  return base.slice(0, 120) || "download";
}

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
    this.active.set(transfer, { offer, chunks: [], received: 0 });
    this.session.send({ type: "accept_file", transfer });
  }

  reject(transfer) {
    this.offers.delete(transfer);
    this.session.send({ type: "reject_file", transfer });
  }

  async data(message, body) {
    const t = this.active.get(message.transfer);
    if (!t || message.offset !== t.received) return; // a new round starts from 0: see update()
    if (body) { t.chunks.push(body); t.received += body.byteLength; }
    this.session.send({ type: "file_ack", transfer: message.transfer, offset: t.received });
    if (t.received >= t.offer.size) await this.finish(message.transfer, t);
  }

  update(message) {
    const t = this.active.get(message.transfer);
    if (t && message.over) this.active.delete(message.transfer);
  }

  async finish(transfer, t) {
    this.active.delete(transfer);
    const blob = new Blob(t.chunks);
    if (!crypto.subtle) {
      this.session.send({ type: "file_done", transfer, ok: false, reason: "cannot check the SHA-256 here" });
      this.onDone(t.offer, false, "this browser checks a file's SHA-256 only on https:// pages: not kept", null);
      return;
    }
    const digest = hex(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
    const ok = digest === t.offer.sha256 && blob.size === t.offer.size;
    this.session.send({ type: "file_done", transfer, ok, reason: ok ? "" : "the SHA-256 did not match" });
    this.onDone(t.offer, ok, ok ? "SHA-256 verified" : "the SHA-256 did not match: not kept",
      ok ? URL.createObjectURL(blob) : null);
  }
}
