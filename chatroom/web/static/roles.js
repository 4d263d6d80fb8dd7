// Running a room (PROTOCOL.md, "Running a room"): a room's modes read from IRC's letters,
// as the terminal client's /mode takes them, and told in words.  No DOM here.

const LETTERS = { o: "operator", v: "voice", m: "moderated", t: "topic_lock", k: "key", i: "invite_only",
  l: "limit", s: "secret", b: "ban" };
const WORDS = { moderated: "moderated", topic_lock: "topic locked", invite_only: "invite-only", secret: "secret",
  key: "has a key", limit: "limit" };
export function modeChanges(spec, args) {
  const changes = [];
  let on = true;
  for (const ch of spec) {
    if (ch === "+" || ch === "-") { on = ch === "+"; continue; }
    const mode = LETTERS[ch];
    if (!mode) throw new Error(`no mode ${ch} (m t i s k l b, and o v with a nick)`);
    const takes = ["operator", "voice", "ban"].includes(mode) || (on && ["key", "limit"].includes(mode));
    const arg = takes ? args.shift() : undefined;
    if (takes && arg === undefined) throw new Error(`${ch} needs a value`);
    changes.push({ mode, on, arg });
  }
  return changes;
}
export function modesText(m) {
  const word = (c) => (["operator", "voice", "ban"].includes(c.mode) ? `${c.mode} ${c.arg}`
    : (WORDS[c.mode] || c.mode) + (c.mode === "limit" && c.arg ? ` ${c.arg}` : ""));
  if (m.nick) return `${m.nick} set ${m.room}: ` + m.changes.map((c) => (c.on === false ? "-" : "+") + word(c)).join(", ");
  let text = `${m.room}: ${m.changes.map(word).join(", ") || "no modes"}`;
  if (m.bans) text += m.bans.length ? "\nbans: " + m.bans.map((b) => `${b.mask} (by ${b.by})`).join(", ") : "\nnobody is banned";
  return text;
}
