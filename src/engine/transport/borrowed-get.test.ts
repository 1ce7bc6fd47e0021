import assert from "node:assert/strict";
import { createServer } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { borrowedGet, ResponseParser } from "./borrowed-get.ts";

function parse(raw: Buffer, piece: number): { status: number | undefined; body: Buffer; complete: boolean } {
  const parser = new ResponseParser();
  const out: Buffer[] = [];
  const copies: Buffer[] = [];
  for (let at = 0; at < raw.length; at += piece) {
    parser.push(Buffer.from(raw.subarray(at, at + piece)), out);
    // Views are valid only until the next push: copy them now, as a consumer must.
    for (const view of out.splice(0)) copies.push(Buffer.from(view));
  }
  parser.finish();
  return { status: parser.status, body: Buffer.concat(copies), complete: parser.complete };
}

describe("ResponseParser", () => {
  const payload = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
  const chunked = Buffer.concat([
    Buffer.from("HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n"),
    Buffer.from("400;ext=1\r\n"),
    payload.subarray(0, 0x400),
    Buffer.from("\r\n" + (3000 - 0x400).toString(16) + "\r\n"),
    payload.subarray(0x400),
    Buffer.from("\r\n0\r\nX-Trailer: 1\r\n\r\n"),
  ]);

  it("de-chunks a body split at any byte", () => {
    for (const piece of [1, 2, 3, 7, 64, 1000, chunked.length]) {
      const r = parse(chunked, piece);
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(payload), `pieces of ${piece}`);
      assert.equal(r.complete, true);
    }
  });

  it("reads a Content-Length body and stops there", () => {
    const raw = Buffer.concat([Buffer.from("HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nhello")]);
    const r = parse(raw, 3);
    assert.deepEqual([r.status, r.body.toString(), r.complete], [404, "hello", true]);
  });

  it("reads a body delimited by the end of the connection", () => {
    const r = parse(Buffer.from("HTTP/1.0 200 OK\r\n\r\nall of it"), 4);
    assert.deepEqual([r.body.toString(), r.complete], ["all of it", true]);
  });

  it("knows a chunked body cut short is not complete", () => {
    const r = parse(chunked.subarray(0, chunked.length - 20), 100);
    assert.equal(r.complete, false);
  });

  it("refuses what is not HTTP or not valid chunking", () => {
    assert.throws(
      () => new ResponseParser().push(Buffer.from("SSH-2.0-OpenSSH\r\n\r\n"), []),
      /unreadable response/,
    );
    const bad = Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert.throws(() => new ResponseParser().push(bad, []), /malformed/);
  });
});

describe("borrowedGet", () => {
  it("streams a chunked body from a unix socket, and reports a connection cut mid-body", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-borrowed-"));
    const path = join(dir, "s.sock");
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    let cut = false;
    const server = createServer((socket) => {
      socket.once("data", () => {
        socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        socket.write(`${body.length.toString(16)}\r\n`);
        if (cut) return socket.end(body.subarray(0, 1000));
        socket.write(body);
        socket.end("\r\n0\r\n\r\n");
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const lost = (e: Error) => Object.assign(new Error(`lost: ${e.message}`), { cause: e });
      const res = await borrowedGet({ socketPath: path }, "/x", lost);
      let total = 0;
      for await (const chunk of res.body) {
        assert.ok(chunk.every((b) => b === 7));
        total += chunk.length;
      }
      assert.equal(total, body.length);
      cut = true;
      const again = await borrowedGet({ socketPath: path }, "/x", lost);
      await assert.rejects(async () => {
        for await (const _ of again.body) void _;
      }, /lost: aborted/);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
