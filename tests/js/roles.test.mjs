// Running a room from the page, with no page: /mode's letters read as PROTOCOL.md's
// mode changes, and a room's modes told in words.
import { test } from "node:test";
import assert from "node:assert/strict";
import { modeChanges, modesText } from "../../chatroom/web/static/roles.js";

test("IRC's letters become mode changes, arguments taken in order", () => {
  assert.deepEqual(modeChanges("+mo-v", ["bob", "cy"]), [
    { mode: "moderated", on: true, arg: undefined },
    { mode: "operator", on: true, arg: "bob" },
    { mode: "voice", on: false, arg: "cy" },
  ]);
  assert.deepEqual(modeChanges("+l-k", ["30"]), [{ mode: "limit", on: true, arg: "30" }, { mode: "key", on: false,
    arg: undefined }]);
  assert.throws(() => modeChanges("+z", []), /no mode z/);
  assert.throws(() => modeChanges("+o", []), /o needs a value/);
});

test("a change is told with who made it; an answer lists the modes and the bans", () => {
  assert.equal(modesText({ room: "dev", nick: "ann", changes: [{ mode: "moderated" }, { mode: "voice", on: false,
    arg: "bob" }] }), "ann set dev: +moderated, -voice bob");
  assert.equal(modesText({ room: "dev", changes: [{ mode: "limit", arg: "5" }], bans: [{ mask: "cy!*@*", by: "ann" }] }),
    "dev: limit 5\nbans: cy!*@* (by ann)");
  assert.equal(modesText({ room: "dev", changes: [] }), "dev: no modes");
});
