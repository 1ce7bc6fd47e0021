import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { describe, it } from "node:test";
import { elsewhere, ownerGone, ownerTag, parseOwner, self } from "./owner.ts";

const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid;

describe("owners of temporary things (lib/owner.ts)", () => {
  it("writes this process as a tag that fits image tags and file names, and reads it back", () => {
    const tag = ownerTag();
    assert.match(tag, /^[0-9]+-[0-9a-f]{8}-s[0-9a-z]*$/);
    assert.deepEqual(parseOwner(tag), self());
    assert.deepEqual(parseOwner(`${tag}-0badc0de`), self(), "a name that starts with the tag");
    assert.deepEqual(parseOwner(`${tag} ${hostname()}\n`), self(), "a lock file's line");
  });

  it(
    "knows its start time on Linux, so a reused pid is not mistaken for the owner",
    { skip: process.platform !== "linux" },
    () => {
      assert.notEqual(self().started, "");
      const live = parseOwner(ownerTag({ ...self(), pid: process.ppid }))!;
      assert.equal(
        ownerGone(live),
        true,
        "the parent runs, but it started at another time than the tag says",
      );
      assert.equal(
        ownerGone({ ...self(), started: `${self().started}0` }),
        true,
        "this pid, an earlier process",
      );
    },
  );

  it("calls an owner gone only when it is on this host and does not run", () => {
    assert.equal(ownerGone(self()), false);
    assert.equal(ownerGone({ ...self(), pid: deadPid() }), true);
    assert.equal(
      ownerGone({ ...self(), pid: process.ppid, started: "" }),
      false,
      "no start time: the pid decides",
    );
    const remote = { pid: deadPid(), hostId: "0badc0de", started: "" };
    assert.equal(ownerGone(remote), false, "another machine's process may run: never reclaimed");
    assert.equal(elsewhere(remote), true);
    assert.equal(elsewhere(self()), false);
  });

  it("reads what older vm wrote (a pid; host/pid; pid-hosthash-random) as this host's, without a start time", () => {
    assert.deepEqual(parseOwner("4242\n"), { pid: 4242, hostId: self().hostId, started: "" });
    assert.deepEqual(parseOwner(`${hostname()}/4242`), { pid: 4242, hostId: self().hostId, started: "" });
    assert.deepEqual(parseOwner("other-host/4242"), {
      pid: 4242,
      hostId: parseOwner("other-host/1")!.hostId,
      started: "",
    });
    assert.notEqual(parseOwner("other-host/4242")!.hostId, self().hostId);
    assert.deepEqual(parseOwner(`4242-${self().hostId}-deadbeef`), {
      pid: 4242,
      hostId: self().hostId,
      started: "",
    });
    assert.deepEqual(parseOwner("4242-abcdef123456"), { pid: 4242, hostId: self().hostId, started: "" });
    assert.deepEqual(
      parseOwner("999999-abcd1234"),
      { pid: 999999, hostId: self().hostId, started: "" },
      "a temp file",
    );
  });

  it("names nobody in text that holds no pid", () => {
    for (const text of ["", "\n", "abc", "0", "-1-x", "x/y", "1.5"])
      assert.equal(parseOwner(text), undefined, text);
  });
});
