// The line people type in: Enter sends, Shift+Enter starts a new line (a pasted block
// stays one message, as the protocol allows), Up and Down recall what was sent, Tab
// completes a nick of the room or a command.  No network here.

// The word before ``caret`` completed from ``candidates`` (the next one each Tab
// press: ``turn``), or null.  At the start of the line a nick gets ": ".
export function complete(text, caret, candidates, turn = 0) {
  const before = text.slice(0, caret);
  const word = before.match(/[^\s]*$/)[0];
  if (!word) return null;
  const start = caret - word.length;
  const command = start === 0 && word.startsWith("/");
  const prefix = (command ? word.slice(1) : word.replace(/^@/, "")).toLowerCase();
  const found = candidates.filter((c) => c.toLowerCase().startsWith(prefix) && c.toLowerCase() !== prefix ||
    (c.toLowerCase() === prefix && candidates.length === 1));
  if (!found.length) return null;
  const pick = found[turn % found.length];
  const at = word.startsWith("@") ? "@" : "";
  const done = command ? `/${pick} ` : at + pick + (start === 0 ? ": " : " ");
  const after = text.slice(caret);
  return { text: text.slice(0, start) + done + after, caret: start + done.length };
}

export class Composer {
  // ``send(text)``: a line to send; ``candidates(commandFirst)``: what Tab may complete.
  constructor(textarea, send, candidates) {
    this.box = textarea;
    this.send = send;
    this.candidates = candidates;
    this.sent = [];        // what was sent, oldest first (Up goes back through it)
    this.back = -1;        // where Up has got to (-1: the line being typed)
    this.draft = "";
    this.turn = 0;         // Tab pressed again: the next completion
    this.tabbed = null;    // what the last Tab made (to go on from it)
    textarea.addEventListener("keydown", (event) => this.key(event));
    textarea.addEventListener("input", () => this.fit());
  }

  key(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;  // (Alt+Up/Down switch tabs: not ours)
    if (event.key !== "Tab") this.tabbed = null;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      const text = this.box.value;
      if (text.trim()) { this.sent.push(text); if (this.sent.length > 100) this.sent.shift(); }
      this.box.value = "";
      this.back = -1;
      this.fit();
      this.send(text);
    } else if (event.key === "ArrowUp" && !this.box.value.slice(0, this.box.selectionStart).includes("\n")) {
      if (this.back === -1) this.draft = this.box.value;
      if (this.back + 1 >= this.sent.length) return;
      event.preventDefault();
      this.back += 1;
      this.show(this.sent[this.sent.length - 1 - this.back]);
    } else if (event.key === "ArrowDown" && this.back >= 0 && !this.box.value.slice(this.box.selectionEnd).includes("\n")) {
      event.preventDefault();
      this.back -= 1;
      this.show(this.back === -1 ? this.draft : this.sent[this.sent.length - 1 - this.back]);
    } else if (event.key === "Tab" && !event.shiftKey && this.box.value) {
      event.preventDefault();
      this.tab();
    }
  }

  tab() {
    const [text, caret] = this.tabbed ? this.tabbed.from : [this.box.value, this.box.selectionStart];
    this.turn = this.tabbed ? this.turn + 1 : 0;
    const done = complete(text, caret, this.candidates(text.startsWith("/") && !text.slice(0, caret).includes(" ")),
      this.turn);
    if (!done) return;
    this.box.value = done.text;
    this.box.setSelectionRange(done.caret, done.caret);
    this.tabbed = { from: [text, caret] };
    this.fit();
  }

  show(text) {
    this.box.value = text;
    this.box.setSelectionRange(text.length, text.length);
    this.fit();
  }

  // As tall as what is typed (wrapped lines too), up to six lines.
  fit() {
    const box = this.box;
    box.rows = 1;
    while (box.rows < 6 && box.scrollHeight > box.clientHeight + 1) box.rows += 1;
  }
}
