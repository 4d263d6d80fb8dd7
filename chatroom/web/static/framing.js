// PROTOCOL.md section 1: a frame is a 4-byte big-endian header length, a UTF-8 JSON
// header, and the optional body the header declares. One frame per WebSocket message.
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeFrame(message, body = null) {
  const header = encoder.encode(JSON.stringify(body ? { ...message, body: body.byteLength } : message));
  const frame = new Uint8Array(4 + header.byteLength + (body ? body.byteLength : 0));
  new DataView(frame.buffer).setUint32(0, header.byteLength, false);
  frame.set(header, 4);
  if (body) frame.set(new Uint8Array(body), 4 + header.byteLength);
  return frame.buffer;
}

export function decodeFrame(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength < 4) throw new Error("frame shorter than its prefix");
  const length = view.getUint32(0, false);
  if (4 + length > buffer.byteLength) throw new Error("frame shorter than its header");
  const header = JSON.parse(decoder.decode(new Uint8Array(buffer, 4, length)));
  const bodyLength = header.body || 0;
  const body = bodyLength ? buffer.slice(4 + length, 4 + length + bodyLength) : null;
  return { header, body };
}
