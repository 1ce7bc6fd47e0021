import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { startFauxqs } from "fauxqs";
import { S3Sink } from "./s3-sink.ts";
import type { S3Options } from "./s3.ts";

/** The sink against an S3 server in this process (fauxqs: no engine, no network beyond loopback). */
describe("S3Sink: a multipart upload written like a file", () => {
  let server: Awaited<ReturnType<typeof startFauxqs>>;
  let options: S3Options;
  let client: S3Client;
  const bucket = "sink-test";
  const MiB = 1024 * 1024;

  before(async () => {
    server = await startFauxqs({ port: 0, host: "127.0.0.1", logger: false });
    server.createBucket(bucket);
    const endpoint = `http://127.0.0.1:${server.port}`;
    // The SDK's credential chain reads the process's environment (as it does when vm runs).
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_REGION: "us-east-1",
    });
    options = {
      env: {
        AWS_ENDPOINT_URL_S3: endpoint,
        AWS_REGION: "us-east-1",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
      },
      endpoint,
    };
    client = new S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
  });

  after(async () => {
    for (const dir of spools) rmSync(dir, { recursive: true, force: true });
    client.destroy();
    await server.stop();
  });

  const object = async (key: string): Promise<Buffer | undefined> => {
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch {
      return undefined;
    }
  };
  const spools: string[] = [];
  const spoolFolder = () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-s3-sink-"));
    spools.push(dir);
    return dir;
  };
  const digest = (data: Buffer) => createHash("sha256").update(data).digest("hex");

  for (const where of ["in memory", "in a spool folder"] as const)
    it(`fills in a held region that straddles two parts (held ${where}), and the object is the bytes written, in order`, async () => {
      const key = `straddle-${where.length}.bin`;
      const spool = where === "in memory" ? undefined : spoolFolder();
      const sink = await S3Sink.create({ bucket, key }, options, undefined, spool);
      // 5 MiB parts: the held 512 bytes begin 100 bytes before the first part ends.
      const head = randomBytes(5 * MiB - 100);
      const rest = randomBytes(6 * MiB + 12345);
      const header = randomBytes(512);
      await sink.write(head);
      sink.hold(head.length, 512);
      await sink.write(Buffer.alloc(512));
      // Written in pieces, as the writer's compressor does, and reused after each write.
      const piece = Buffer.alloc(64 * 1024);
      for (let at = 0; at < rest.length; at += piece.length) {
        const n = rest.copy(piece, 0, at, Math.min(rest.length, at + piece.length));
        await sink.write(piece.subarray(0, n));
        piece.fill(0xff);
      }
      // Both parts the region touches wait on disk (a part's size each), not in memory.
      if (spool)
        assert.deepEqual(
          readdirSync(spool).map((f) => statSync(join(spool, f)).size),
          [5 * MiB, 5 * MiB],
        );
      await sink.writeAt(header, head.length);
      if (spool) assert.deepEqual(readdirSync(spool), [], "the held parts' files go once uploaded");
      assert.equal((await object(key)) === undefined, true, "nothing under the key before commit");
      await sink.commit();
      const stored = await object(key);
      assert.ok(stored);
      const expected = Buffer.concat([head, header, rest]);
      assert.equal(stored.length, expected.length);
      assert.equal(digest(stored), digest(expected));
      const headed = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      assert.match(headed.ETag ?? "", /-3"$/, "three parts: 5 MiB, 5 MiB and the rest");
    });

  it("aborting with a part held on disk leaves nothing under the key and no file behind", async () => {
    const key = "aborted-held.bin";
    const spool = spoolFolder();
    const sink = await S3Sink.create({ bucket, key }, options, undefined, spool);
    sink.hold(1000, 512);
    await sink.write(randomBytes(12 * MiB));
    assert.equal(readdirSync(spool).length, 1);
    await sink.abort();
    assert.equal(await object(key), undefined);
    assert.deepEqual(readdirSync(spool), []);
  });

  it("aborting leaves nothing under the key", async () => {
    const key = "aborted.bin";
    const sink = await S3Sink.create({ bucket, key }, options);
    await sink.write(randomBytes(12 * MiB));
    await sink.abort();
    assert.equal(await object(key), undefined);
  });

  it("refuses to write at a position already uploaded that was never held", async () => {
    const sink = await S3Sink.create({ bucket, key: "unheld.bin" }, options);
    await sink.write(randomBytes(11 * MiB));
    await assert.rejects(sink.writeAt(Buffer.alloc(10), 100), /already uploaded/);
    await sink.abort();
  });

  it("an empty file is one empty part, and commits", async () => {
    const key = "empty.bin";
    const sink = await S3Sink.create({ bucket, key }, options);
    await sink.commit();
    assert.equal((await object(key))?.length, 0);
  });
});
