import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { rejectsVm } from "../snapshot-file/testing/assert.ts";
import { openDownload } from "./download.ts";

/** A web server for one file that can cut connections, refuse ranges, or change the file. */
interface Behaviour {
  ranges: boolean;
  /** Per request, in order: cut the response after this many body bytes (undefined: send it all). */
  cuts: (number | undefined)[];
  status?: number;
  authorization?: string;
}

describe("openDownload: an http(s) file as one stream, resumed where the connection drops", () => {
  let server: Server;
  let base: string;
  let file: Buffer = randomBytes(256 * 1024);
  let etag = `"${createHash("sha256").update(file).digest("hex").slice(0, 16)}"`;
  let behaviour: Behaviour = { ranges: true, cuts: [] };
  const seen: { range?: string; ifRange?: string; authorization?: string; sent: number }[] = [];

  const replace = (content: Buffer) => {
    file = content;
    etag = `"${createHash("sha256").update(file).digest("hex").slice(0, 16)}"`;
  };

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const record: (typeof seen)[number] = { sent: 0 };
    if (req.headers.range) record.range = req.headers.range;
    if (req.headers["if-range"]) record.ifRange = req.headers["if-range"] as string;
    if (req.headers.authorization) record.authorization = req.headers.authorization;
    seen.push(record);
    if (req.url === "/moved") {
      res.writeHead(302, { Location: `http://localhost:${(server.address() as AddressInfo).port}/file` });
      res.end();
      return;
    }
    if (behaviour.status) {
      res.writeHead(behaviour.status);
      res.end();
      return;
    }
    if (behaviour.authorization && req.headers.authorization !== behaviour.authorization) {
      res.writeHead(401);
      res.end();
      return;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const current = req.headers["if-range"] === undefined || req.headers["if-range"] === etag;
    const headers: Record<string, string> = { ETag: etag };
    if (behaviour.ranges) headers["Accept-Ranges"] = "bytes";
    if (behaviour.ranges && range && current) {
      start = Number(range[1]);
      headers["Content-Range"] = `bytes ${start}-${file.length - 1}/${file.length}`;
      res.writeHead(206, { ...headers, "Content-Length": String(file.length - start) });
    } else res.writeHead(200, { ...headers, "Content-Length": String(file.length) });
    const cut = behaviour.cuts.shift();
    const body = file.subarray(start);
    if (cut === undefined) {
      record.sent = body.length;
      res.end(body);
      return;
    }
    record.sent = cut;
    res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
  }

  before(async () => {
    server = createServer(handle);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const read = async (stream: NodeJS.ReadableStream): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  };
  const fresh = (b: Behaviour) => {
    behaviour = b;
    seen.length = 0;
  };

  it("reads the whole file, with its size and ETag, in one request when nothing breaks", async () => {
    fresh({ ranges: true, cuts: [] });
    const download = await openDownload({ url: new URL(`${base}/file`) });
    assert.equal(download.size, file.length);
    assert.equal(download.etag, etag);
    assert.equal(download.ranges, true);
    assert.deepEqual(await read(download.stream), file);
    assert.equal(seen.length, 1);
  });

  it("resumes at the byte it reached after cuts at 10 %, 50 % and 90 %, downloading the file about once", async () => {
    const size = file.length;
    fresh({ ranges: true, cuts: [Math.floor(size * 0.1), Math.floor(size * 0.4), Math.floor(size * 0.4)] });
    const notes: string[] = [];
    const download = await openDownload({
      url: new URL(`${base}/file`),
      backoffMs: 5,
      onNote: (t) => notes.push(t),
    });
    assert.deepEqual(await read(download.stream), file);
    assert.equal(seen.length, 4);
    assert.deepEqual(
      seen.slice(1).map((r) => [r.range, r.ifRange]),
      [
        [`bytes=${Math.floor(size * 0.1)}-`, etag],
        [`bytes=${Math.floor(size * 0.1) + Math.floor(size * 0.4)}-`, etag],
        [`bytes=${Math.floor(size * 0.1) + 2 * Math.floor(size * 0.4)}-`, etag],
      ],
    );
    const sent = seen.reduce((sum, r) => sum + r.sent, 0);
    assert.equal(sent, size, "every byte was sent once");
    assert.equal(notes.filter((n) => /resumed there/.test(n)).length, 3);
  });

  it("reads again from the start on a server without ranges, passing on only the bytes not yet passed", async () => {
    fresh({ ranges: false, cuts: [Math.floor(file.length / 2)] });
    const notes: string[] = [];
    const download = await openDownload({
      url: new URL(`${base}/file`),
      backoffMs: 5,
      onNote: (t) => notes.push(t),
    });
    assert.equal(download.ranges, false);
    assert.deepEqual(await read(download.stream), file);
    assert.equal(seen[1]!.range, undefined, "no Range is asked of a server that said it has none");
    assert.equal(notes.filter((n) => /does not support ranged requests/.test(n)).length, 1, "said once");
  });

  it("fails clearly when the file was replaced between the cut and the resume", async () => {
    const before = file;
    fresh({ ranges: true, cuts: [1000] });
    const download = await openDownload({ url: new URL(`${base}/file`), backoffMs: 5 });
    const chunks: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of download.stream as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        if (Buffer.concat(chunks).length >= 1000 && file === before) replace(randomBytes(before.length));
      }
    })();
    await rejectsVm(reading, {
      code: "REMOTE_CHANGED",
      exitCode: 7,
      message: /changed while it was downloaded \(ETag "/,
    });
  });

  it("gives up after its retries, saying where it broke", async () => {
    fresh({ ranges: true, cuts: [100, 0, 0, 0] });
    const download = await openDownload({ url: new URL(`${base}/file`), backoffMs: 1, retries: 2 });
    await rejectsVm(read(download.stream), {
      code: "REMOTE_CONNECTION_LOST",
      exitCode: 1,
      message: [/broke at 0% \(byte 100 of \d+\)/, /could not be resumed \(2 tries\)/],
    });
  });

  it("names a missing file, a refusal, and an unreachable server, with what to do", async () => {
    fresh({ ranges: true, cuts: [], status: 404 });
    await rejectsVm(openDownload({ url: new URL(`${base}/file`) }), {
      code: "REMOTE_NOT_FOUND",
      exitCode: 4,
      message: /does not exist \(HTTP 404\)/,
    });
    fresh({ ranges: true, cuts: [], authorization: "Bearer right" });
    const denied = await rejectsVm(
      openDownload({ url: new URL(`${base}/file`), authorization: "Bearer wrong" }),
      {
        code: "REMOTE_DENIED",
        exitCode: 1,
        message: /refused vm with the Authorization given \(HTTP 401\)/,
      },
    );
    assert.doesNotMatch(`${denied.message} ${denied.hint}`, /wrong/, "the token is never shown");
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await rejectsVm(openDownload({ url: new URL(`http://127.0.0.1:${port}/file`) }), {
      code: "REMOTE_UNREACHABLE",
      exitCode: 1,
      message: new RegExp(`Cannot reach 127\\.0\\.0\\.1:${port}`),
    });
  });

  it("sends Authorization to the URL's own origin only, not after a redirect elsewhere", async () => {
    fresh({ ranges: true, cuts: [] });
    const download = await openDownload({ url: new URL(`${base}/moved`), authorization: "Bearer secret" });
    await read(download.stream);
    assert.equal(seen[0]!.authorization, "Bearer secret");
    assert.equal(seen[1]!.authorization, undefined, "localhost is another origin than 127.0.0.1");
  });
});
