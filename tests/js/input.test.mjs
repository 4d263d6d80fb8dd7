// What the page's typing helpers decide, with no page: Tab completion, IRC codes, colours.
import { test } from "node:test";
import assert from "node:assert/strict";
import { complete } from "../../chatroom/web/static/input.js";
import { nickColour } from "../../chatroom/web/static/render.js";

test("Tab completes a nick (with ': ' at the start of a line) or a command, and cycles", () => {
  const nicks = ["bob", "Bea", "carol"];
  assert.deepEqual(complete("b", 1, nicks), { text: "bob: ", caret: 5 });
  assert.deepEqual(complete("b", 1, nicks, 1), { text: "Bea: ", caret: 5 });
  assert.deepEqual(complete("hi ca", 5, nicks), { text: "hi carol ", caret: 9 });
  assert.deepEqual(complete("hi @ca and", 6, nicks), { text: "hi @carol  and", caret: 10 });
  assert.deepEqual(complete("/jo", 3, ["join", "quit"]), { text: "/join ", caret: 6 });
  assert.equal(complete("hi zed", 6, nicks), null);
  assert.equal(complete("hi ", 3, nicks), null);
});

test("a nick always gets the same colour, whatever its case", () => {
  assert.equal(nickColour("Ann"), nickColour("ann"));
  assert.match(nickColour("bob"), /^c[0-7]$/);
  assert.ok(new Set(["ann", "bob", "carol", "dave", "eve", "frank"].map(nickColour)).size > 2);
});
