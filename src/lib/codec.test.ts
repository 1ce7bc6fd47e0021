import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import zlib from "node:zlib";
import { VmError } from "../errors.ts";
import {
  ChunkedCompressor,
  type Compression,
  compressionForPath,
  createDecompressor,
  detectCompression,
  extensionFor,
  storedBlock,
  storedBlockSize,
} from "./codec.ts";

const compressions: Compression[] = ["gzip", "zstd", "none"];
const packed: Compression[] = ["gzip", "zstd"];

async function decompress(compression: Compression, data: Buffer): Promise<Buffer> {
  const out = createDecompressor(compression);
  const [, result] = await Promise.all([pipeline(Readable.from([data]), out), buffer(out)]);
  return result;
}

/** Compressible bytes: text that repeats with small variations. */
function text(size: number): Buffer {
  let s = "";
  for (let i = 0; s.length < size; i++) s += `line ${i % 1000} of a very repetitive log file\n`;
  return Buffer.from(s.slice(0, size));
}

/** Splits data into pieces of irregular sizes, as a stream would hand them over. */
function pieces(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = [1, 7, 4096, 65536, 333, 100_000][i % 6]!;
    out.push(data.subarray(at, at + size));
    at += size;
  }
  return out;
}

interface Run {
  compressor: ChunkedCompressor;
  writes: Buffer[];
  output: () => Buffer;
}

function run(
  compression: Compression,
  options: { chunkSize?: number; concurrency?: number; level?: number } = {},
): Run {
  const writes: Buffer[] = [];
  const compressor = new ChunkedCompressor({
    compression,
    ...options,
    write: async (parts) => {
      const compressed = Buffer.concat(parts);
      writes.push(compressed);
    },
  });
  return { compressor, writes, output: () => Buffer.concat(writes) };
}

async function compressAll(
  compression: Compression,
  data: Buffer,
  options: { chunkSize?: number; level?: number } = {},
) {
  const r = run(compression, options);
  for (const piece of pieces(data)) await r.compressor.push(piece);
  await r.compressor.end();
  return r;
}

describe("ChunkedCompressor", () => {
  for (const compression of compressions) {
    describe(compression, () => {
      const chunkSize = 64 * 1024;
      const cases: [string, Buffer][] = [
        ["1 random byte", randomBytes(1)],
        ["exactly one chunk of random bytes", randomBytes(chunkSize)],
        ["one chunk plus one byte of text", text(chunkSize + 1)],
        ["many chunks of random bytes", randomBytes(chunkSize * 7 + 123)],
        ["many chunks of text", text(chunkSize * 9 + 5)],
      ];
      for (const [name, data] of cases) {
        it(`round-trips ${name}`, async () => {
          const { compressor, writes, output } = await compressAll(compression, data, { chunkSize });
          assert.ok((await decompress(compression, output())).equals(data));
          assert.equal(writes.length, Math.ceil(data.length / chunkSize));
          assert.equal(compressor.bytesIn, data.length);
          assert.equal(compressor.bytesOut, output().length);
        });
      }

      it("round-trips with the default chunk size", async () => {
        const data = Buffer.concat([randomBytes(3 << 20), text(3 << 20)]);
        const { output } = await compressAll(compression, data);
        assert.ok((await decompress(compression, output())).equals(data));
      });

      it("writes output the decoder accepts even when nothing was pushed", async () => {
        const { output } = await compressAll(compression, Buffer.alloc(0));
        assert.equal((await decompress(compression, output())).length, 0);
        if (compression === "none") assert.equal(output().length, 0);
      });

      it("makes a member boundary at flush(): bytes written before it decode alone to bytes pushed before it", async () => {
        const { compressor, writes, output } = run(compression, { chunkSize: 10_000 });
        const first = Buffer.concat([randomBytes(25_000), text(3_000)]);
        const second = text(17_000);
        await compressor.push(first);
        await compressor.flush();
        const before = output();
        const writesBefore = writes.length;
        await compressor.push(second);
        await compressor.end();
        const afterFlush = Buffer.concat(writes.slice(writesBefore));
        assert.ok((await decompress(compression, before)).equals(first));
        assert.ok((await decompress(compression, afterFlush)).equals(second));
        assert.ok((await decompress(compression, output())).equals(Buffer.concat([first, second])));
      });
    });
  }

  for (const compression of packed) {
    it(`${compression}: emits chunks in input order while chunks of mixed difficulty finish out of order`, async () => {
      const chunkSize = 4096;
      const chunks = Array.from({ length: 200 }, (_, i) =>
        i % 3 === 0 ? randomBytes(chunkSize) : i % 3 === 1 ? Buffer.alloc(chunkSize) : text(chunkSize),
      );
      const { compressor, writes } = run(compression, { chunkSize, concurrency: 4, level: 9 });
      for (const chunk of chunks) await compressor.push(chunk);
      await compressor.end();
      assert.equal(writes.length, chunks.length);
      for (const [i, chunk] of chunks.entries())
        assert.ok((await decompress(compression, writes[i]!)).equals(chunk));
    });
  }

  it("writes in input order when the first chunk's compression finishes last", async (t) => {
    const realCreate = zlib.createGzip.bind(zlib);
    const finished: number[] = [];
    t.mock.method(zlib, "createGzip", (options: zlib.ZlibOptions) => {
      const stream = realCreate(options);
      let id = -1;
      const write = stream.write.bind(stream) as (chunk: Buffer, ...rest: unknown[]) => boolean;
      (stream as unknown as { write: typeof write }).write = (chunk, ...rest) => {
        if (chunk.length > 0) id = chunk[0]!; // flush() writes an empty buffer through here too
        return write(chunk, ...rest);
      };
      const flush = stream.flush.bind(stream) as (kind: number, cb: () => void) => void;
      (stream as unknown as { flush: (kind: number, cb: () => void) => void }).flush = (kind, cb) =>
        flush(kind, () => {
          const mine = id;
          // Chunk 0 finishes only once 1 and 2 have: deterministic, whatever the machine's load.
          const finish = () => {
            if (mine === 0 && !(finished.includes(1) && finished.includes(2)))
              return void setTimeout(finish, 5);
            finished.push(mine);
            cb();
          };
          finish();
        });
      return stream;
    });
    const { compressor, writes } = run("gzip", { chunkSize: 16, concurrency: 3 });
    for (let id = 0; id < 3; id++) await compressor.push(Buffer.alloc(16, id));
    await compressor.end();
    assert.equal(finished[2], 0, "the first chunk finished last");
    assert.deepEqual(
      writes.map((w) => zlib.gunzipSync(w)[0]),
      [0, 1, 2],
    );
  });

  it("holds push back while `concurrency` chunks are in flight and never overlaps writes", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let active = 0;
    let maxActive = 0;
    const written: Buffer[] = [];
    const compressor = new ChunkedCompressor({
      compression: "gzip",
      chunkSize: 1024,
      concurrency: 2,
      write: async (parts) => {
        const compressed = Buffer.concat(parts);
        maxActive = Math.max(maxActive, ++active);
        await gate;
        written.push(compressed);
        active--;
      },
    });
    await compressor.push(randomBytes(1024));
    await compressor.push(randomBytes(1024));
    let resolved = false;
    const third = compressor.push(randomBytes(1024)).then(() => (resolved = true));
    await sleep(100);
    assert.equal(resolved, false);
    assert.equal(written.length, 0);
    release();
    await third;
    await compressor.end();
    assert.equal(written.length, 3);
    assert.equal(maxActive, 1);
  });

  it("rejects push and every later call with the error `write` threw, and writes nothing after it", async () => {
    const boom = new Error("disk full");
    let calls = 0;
    const compressor = new ChunkedCompressor({
      compression: "zstd",
      chunkSize: 1024,
      concurrency: 2,
      write: async () => {
        if (++calls === 2) throw boom;
      },
    });
    await assert.rejects(async () => {
      for (let i = 0; i < 50; i++) await compressor.push(randomBytes(1024));
    }, boom);
    await assert.rejects(compressor.push(Buffer.alloc(1)), boom);
    await assert.rejects(compressor.end(), boom);
    assert.equal(calls, 2);
  });

  it("rejects flush with the error `write` threw for the final chunk", async () => {
    const compressor = new ChunkedCompressor({
      compression: "gzip",
      write: async () => {
        throw new Error("pipe closed");
      },
    });
    await compressor.push(text(100));
    await assert.rejects(compressor.flush(), /pipe closed/);
  });

  it("rejects with COMPRESSION_FAILED when zlib fails", async (t) => {
    t.mock.method(zlib, "createZstdCompress", () => {
      const broken = new PassThrough() as PassThrough & { flush: () => void };
      broken.flush = () => setImmediate(() => broken.destroy(new Error("out of memory")));
      return broken;
    });
    const { compressor, writes } = run("zstd", { chunkSize: 10 });
    await assert.rejects(
      async () => {
        for (let i = 0; i < 10; i++) await compressor.push(Buffer.alloc(10));
        await compressor.end();
      },
      (error: unknown) => error instanceof VmError && error.code === "COMPRESSION_FAILED",
    );
    assert.equal(writes.length, 0);
  });

  it("honours the level: level 1 output is larger than level 9 (gzip) or 19 (zstd) for compressible data", async () => {
    // Words in a pseudo-random order: the higher levels' better matching and entropy coding show.
    const words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];
    let seed = 1;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16;
    const data = Buffer.from(Array.from({ length: 100_000 }, () => words[next() % words.length]).join(" "));
    for (const [compression, high] of [
      ["gzip", 9],
      ["zstd", 19],
    ] as const) {
      const fast = await compressAll(compression, data, { level: 1 });
      const small = await compressAll(compression, data, { level: high });
      assert.ok(
        fast.compressor.bytesOut > small.compressor.bytesOut,
        `${compression}: ${fast.compressor.bytesOut} vs ${small.compressor.bytesOut}`,
      );
      assert.ok((await decompress(compression, small.output())).equals(data));
    }
  });

  it("refuses a level the format does not have with COMPRESSION_LEVEL_INVALID", () => {
    const write = async () => {};
    for (const [compression, level] of [
      ["gzip", 0],
      ["gzip", 10],
      ["zstd", 23],
      ["gzip", 2.5],
    ] as const) {
      assert.throws(
        () => new ChunkedCompressor({ compression, level, write }),
        (error: unknown) => error instanceof VmError && error.code === "COMPRESSION_LEVEL_INVALID",
      );
    }
  });

  it("refuses push after end()", async () => {
    const { compressor } = run("gzip");
    await compressor.end();
    await assert.rejects(compressor.push(Buffer.alloc(1)), /after end/);
  });

  it(
    "measures throughput on 256 MiB of semi-compressible data (VM_CODEC_BENCH=1)",
    { skip: process.env.VM_CODEC_BENCH !== "1" },
    async () => {
      const pool = Array.from({ length: 256 }, () => randomBytes(1024));
      const block = Buffer.concat(
        Array.from({ length: 16 * 1024 }, (_, i) =>
          i % 3 === 0 ? Buffer.alloc(1024) : pool[(i * 7919) % pool.length]!,
        ),
      );
      const total = 256 << 20;
      for (const [compression, level, concurrency] of [
        ["gzip", 6, 1],
        ["gzip", 6, 2],
        ["zstd", 3, 1],
        ["zstd", 3, 2],
      ] as const) {
        let out = 0;
        const compressor = new ChunkedCompressor({
          compression,
          level,
          concurrency,
          write: async (parts) => {
            const b = Buffer.concat(parts);
            out += b.length;
          },
        });
        const start = process.hrtime.bigint();
        for (let done = 0; done < total; done += block.length) await compressor.push(block);
        await compressor.end();
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        report(
          `${compression} level ${level} concurrency ${concurrency}: ${(total / 2 ** 20 / seconds).toFixed(0)} MiB/s, ` +
            `${seconds.toFixed(2)} s, ratio ${(out / total).toFixed(3)}`,
        );
      }
    },
  );
});

function report(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

describe("storedBlock", () => {
  const sizes = [0, 1, 255, 256, 512, 4096, 65535];

  for (const compression of compressions) {
    it(`${compression}: has storedBlockSize bytes whatever the content, and decodes to the data`, async () => {
      for (const n of sizes) {
        for (const data of [randomBytes(n), Buffer.alloc(n), Buffer.alloc(n, 0xff)]) {
          const block = storedBlock(compression, data);
          assert.equal(block.length, storedBlockSize(compression, n), `${compression} ${n}`);
          assert.ok((await decompress(compression, block)).equals(data), `${compression} ${n}`);
        }
      }
    });

    it(`${compression}: decodes interleaved with compressed members`, async () => {
      const { compressor, writes, output } = run(compression, { chunkSize: 4096 });
      const parts: Buffer[] = [];
      for (let i = 0; i < 5; i++) {
        const data = i % 2 ? randomBytes(5000) : text(9000);
        await compressor.push(data);
        await compressor.flush();
        const header = randomBytes(512);
        writes.push(storedBlock(compression, header));
        parts.push(data, header);
      }
      await compressor.end();
      assert.ok((await decompress(compression, output())).equals(Buffer.concat(parts)));
    });
  }

  it("has the documented sizes", () => {
    assert.equal(storedBlockSize("gzip", 512), 535);
    assert.equal(storedBlockSize("zstd", 512), 522);
    assert.equal(storedBlockSize("zstd", 100), 109);
    assert.equal(storedBlockSize("none", 512), 512);
    assert.throws(() => storedBlock("gzip", Buffer.alloc(65536)));
  });
});

describe("system decoders", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vm-codec-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const has = (tool: string) => {
    try {
      execFileSync(tool, ["--version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };

  for (const [compression, tool] of [
    ["gzip", "gzip"],
    ["zstd", "zstd"],
  ] as const) {
    it(
      `${tool} -dc decodes stored blocks concatenated with compressed members`,
      { skip: !has(tool) },
      async () => {
        const { compressor, writes, output } = run(compression, { chunkSize: 50_000 });
        writes.push(storedBlock(compression, Buffer.from("stored first\n")));
        const body = Buffer.concat([text(120_000), randomBytes(70_000)]);
        await compressor.push(body);
        await compressor.flush();
        const header = randomBytes(512);
        writes.push(storedBlock(compression, header));
        await compressor.push(text(1000));
        await compressor.end();
        const file = join(dir, `out${extensionFor(compression)}`);
        writeFileSync(file, output());
        const decoded = execFileSync(tool, ["-dc", file], { maxBuffer: 1 << 30 });
        assert.ok(decoded.equals(Buffer.concat([Buffer.from("stored first\n"), body, header, text(1000)])));
      },
    );
  }
});

describe("createDecompressor", () => {
  for (const compression of packed) {
    it(`${compression}: decodes a stream of 3000 members/frames in full`, async () => {
      const data = Buffer.concat([randomBytes(100_000), text(200_000)]);
      const { writes, output } = await compressAll(compression, data, { chunkSize: 100 });
      assert.equal(writes.length, 3000);
      assert.ok((await decompress(compression, output())).equals(data));
    });
  }
});

describe("detectCompression", () => {
  it("recognises gzip and zstd magic bytes and treats anything else as none", () => {
    assert.equal(detectCompression(zlib.gzipSync("x")), "gzip");
    assert.equal(detectCompression(zlib.zstdCompressSync("x")), "zstd");
    assert.equal(detectCompression(storedBlock("zstd", Buffer.alloc(1))), "zstd");
    assert.equal(detectCompression(Buffer.from("ustar")), "none");
    assert.equal(detectCompression(Buffer.from([0x1f])), "none");
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f])), "none");
    assert.equal(detectCompression(Buffer.alloc(0)), "none");
  });
});

describe("compressionForPath and extensionFor", () => {
  it("maps file names to compressions", () => {
    assert.equal(compressionForPath("/x/a.snapshot.tar.gz"), "gzip");
    assert.equal(compressionForPath("a.tgz"), "gzip");
    assert.equal(compressionForPath("a.snapshot.tar.zst"), "zstd");
    assert.equal(compressionForPath("a.tar"), "none");
    assert.equal(compressionForPath("a.zip"), undefined);
  });

  it("gives each compression an extension that maps back to it", () => {
    for (const compression of compressions) {
      assert.equal(compressionForPath(`a${extensionFor(compression)}`), compression);
    }
    assert.equal(extensionFor("gzip"), ".snapshot.tar.gz");
    assert.equal(extensionFor("zstd"), ".snapshot.tar.zst");
    assert.equal(extensionFor("none"), ".snapshot.tar");
  });
});
