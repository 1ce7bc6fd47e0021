// The s3:// rows of `npm run bench`: `vm snapshot export --output s3://...` and `vm snapshot import s3://...`
// against the same export to and import from a local file, through an S3 emulator (fauxqs) the bench
// starts and stops on loopback, its objects kept in its memory.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ensureImages } from "./images.ts";
import { alternate, run, type MemoryRow, type Row, type SuiteOptions } from "./lib.ts";
import {
  ChildServer,
  cpuSeconds,
  freePort,
  node,
  peakRssKb,
  removeLabelledImages,
  SECOND_ENGINE,
  secondEngineUp,
  vmTimed,
} from "./processes.ts";

const REPO = resolve(import.meta.dirname, "..");
const SNAPSHOT = "bench-s3";
const IMPORTED = "bench-s3-in";
const BUCKET = "vm-bench";
const KEY = "dev.snapshot.tar.zst";

export type S3Row = Row;

export interface S3Results {
  rows: S3Row[];
  memory: MemoryRow[];
  /** What shows that every timed export wrote, and every import read, the whole snapshot. */
  facts: Record<string, unknown>;
}

/** `rounds`: of each row (a full export or import of the dev image). */
export type S3Options = SuiteOptions;

/**
 * fauxqs (an S3 emulator, a dev dependency) in a child process on a free port, anonymous, with the bucket
 * made at start-up. Objects stay in its memory: with a storage folder it writes every part to disk and then
 * the assembled object again (twice the export's bytes, about 1.5 CPU-seconds a round on the two cores vm
 * and the engine use), storage work a real store does on its own machines. Its MD5 of every part (the
 * ETags), HTTP parsing and copies still share the machine with vm.
 */
class S3Server {
  readonly endpoint: string;
  private readonly root: string;
  private readonly init: string;
  private readonly port: number;
  readonly logFile: string;
  private readonly server: ChildServer;
  /** Its peak RSS (KiB), read just before it is stopped. */
  peakKb = 0;

  constructor(dir: string) {
    this.root = dir;
    this.init = join(dir, "init.json");
    this.logFile = join(dir, "fauxqs.log");
    this.port = freePort();
    this.endpoint = `http://127.0.0.1:${this.port}`;
    writeFileSync(this.init, JSON.stringify({ buckets: [BUCKET] }) + "\n");
    this.server = new ChildServer({
      name: "fauxqs",
      command: process.execPath,
      args: [join(REPO, "node_modules/fauxqs/dist/server.js")],
      env: {
        ...process.env,
        FAUXQS_PORT: String(this.port),
        FAUXQS_HOST: "127.0.0.1",
        FAUXQS_INIT: this.init,
      },
      logFile: this.logFile,
      // Ready once the bucket answers: the init config is applied after the server listens.
      ready: { url: `${this.endpoint}/${BUCKET}`, method: "HEAD", status: 200 },
    });
  }

  /** What vm (and the helper client) needs to reach it: endpoint, a region and (any) static credentials. */
  clientEnv(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_S3: this.endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "bench",
      AWS_SECRET_ACCESS_KEY: "bench",
      AWS_EC2_METADATA_DISABLED: "true",
      // Nothing from the user's ~/.aws: the static credentials above and no profile.
      AWS_CONFIG_FILE: join(this.root, "aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(this.root, "aws-credentials"),
    };
  }

  start(): void {
    this.server.start();
  }

  stop(): void {
    this.peakNow();
    this.server.stop();
  }

  /** Its peak RSS so far (KiB). */
  peakNow(): number {
    const pid = this.server.runningPid;
    if (pid !== undefined) this.peakKb = Math.max(this.peakKb, peakRssKb(pid));
    return this.peakKb;
  }

  /** CPU seconds it has used so far. */
  cpu(): number {
    const pid = this.server.runningPid;
    return pid === undefined ? 0 : cpuSeconds(pid);
  }

  /** The object's size as S3 reports it (HeadObject), undefined when it is absent. */
  size(key: string): number | undefined {
    const out = this.client(
      `c.send(new s3.HeadObjectCommand({ Bucket: process.argv[1], Key: process.argv[2] }))
        .then((r) => console.log(r.ContentLength), (e) => { if (e.$metadata?.httpStatusCode === 404) console.log(-1); else throw e; })`,
      key,
    );
    const n = Number(out);
    return n < 0 ? undefined : n;
  }

  delete(key: string): void {
    this.client(`c.send(new s3.DeleteObjectCommand({ Bucket: process.argv[1], Key: process.argv[2] }))`, key);
  }

  /** One S3 call through the SDK (vm's own dependency) in a helper process: `c` the client, `s3` the SDK. */
  private client(call: string, key: string): string {
    return node(
      `const s3 = require("@aws-sdk/client-s3");
      const c = new s3.S3Client({ endpoint: process.env.AWS_ENDPOINT_URL_S3, forcePathStyle: true,
        requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" });
      Promise.resolve(${call}).finally(() => c.destroy());`,
      [BUCKET, key],
      { ...process.env, ...this.clientEnv() },
    );
  }

  dispose(): void {
    this.peakNow();
    this.server.dispose();
    rmSync(this.root, { recursive: true, force: true });
  }
}

function fauxqsVersion(): string {
  const pkg = JSON.parse(readFileSync(join(REPO, "node_modules/fauxqs/package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

export function benchS3(options: S3Options): S3Results {
  const { vm, label, log } = options;
  const image = ensureImages(log).dev;
  const second = secondEngineUp();
  const host = second ? SECOND_ENGINE : (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock");
  const dir = mkdtempSync(join(tmpdir(), "vm-bench-s3-"));
  const serverDir = join(dir, "fauxqs");
  mkdirSync(serverDir);
  const server = new S3Server(serverDir);
  // The same environment for both contenders of a row: only the path differs.
  const env = { ...options.env, ...server.clientEnv() };
  delete env.AWS_PROFILE;
  const homeB = join(dir, "home-b");
  mkdirSync(homeB);
  // Without a second engine the import goes to the first, in vm's own home (as the transfers suite does).
  const envB = { ...env, DOCKER_HOST: host, XDG_CONFIG_HOME: second ? homeB : options.env.XDG_CONFIG_HOME };
  const url = `s3://${BUCKET}/${KEY}`;
  const file = join(dir, KEY);
  const results: S3Results = { rows: [], memory: [], facts: {} };

  const dropObject = () => {
    server.delete(KEY);
    if (server.size(KEY) !== undefined) throw new Error(`bench: ${url} is still there after DeleteObject`);
  };
  const dropFile = () => rmSync(file, { force: true });
  // Every timed import starts with the image absent from the target engine.
  const forget = () => {
    spawnSync(vm, ["snapshot", "delete", `@${IMPORTED}`, "--force"], { env: envB });
    removeLabelledImages(host, label);
  };
  const mustLoad = (what: string, stdout: string) => {
    if (!/loaded and verified/.test(stdout))
      throw new Error(`bench: ${what} did not load the image (was it there already?): ${stdout}`);
  };

  try {
    // The snapshot to export: the dev image saved as a global snapshot, as the registry rows make theirs.
    const df = join(dir, "Dockerfile");
    writeFileSync(df, `FROM ${image}\n`);
    run(vm, ["create", "--save-as", `@${SNAPSHOT}`, "--from-dockerfile", df, "--force"], { env });
    const tag = `vm-snapshot/global:${SNAPSHOT}`;
    const imageBytes = Number(run("docker", ["image", "inspect", "--format", "{{.Size}}", tag]));
    server.start();

    // 1. Export (zstd) into a multipart upload against the same export to a local file. One untimed export
    // of each first: the emulator, a fresh process, took its first upload 3-4 s longer than the next ones
    // (17.1 and 17.5 s against 12.8-13.7 s), its own warm-up rather than vm's.
    run(vm, ["snapshot", "export", `@${SNAPSHOT}`, "--output", url], { env });
    dropObject();
    run(vm, ["snapshot", "export", `@${SNAPSHOT}`, "--output", file], { env });
    dropFile();
    log(`bench: s3: export of ${image} to ${server.endpoint}, ${options.rounds} round(s)\n`);
    let exportRss = 0;
    let exportFileRss = 0;
    const cpuBefore = server.cpu();
    const written: Record<string, number[]> = { s3: [], file: [] };
    const exported = alternate(options.rounds, [
      {
        name: "vm export to s3://",
        before: dropObject,
        measure: () => {
          const r = vmTimed(vm, ["snapshot", "export", `@${SNAPSHOT}`, "--output", url], { env });
          exportRss = Math.max(exportRss, r.rssKb);
          return r.seconds;
        },
        after: () => {
          const size = server.size(KEY);
          if (size === undefined) throw new Error(`bench: the export left nothing at ${url}`);
          written.s3!.push(size);
          dropObject();
        },
      },
      {
        name: "vm export to a file",
        before: dropFile,
        measure: () => {
          const r = vmTimed(vm, ["snapshot", "export", `@${SNAPSHOT}`, "--output", file], { env });
          exportFileRss = Math.max(exportFileRss, r.rssKb);
          return r.seconds;
        },
        after: () => {
          written.file!.push(statSync(file).size);
          dropFile();
        },
      },
    ]);
    const exportCpu = server.cpu() - cpuBefore;
    // Each S3 export within 1% of the file exports' size: the whole snapshot went into the object.
    const fileMedian = [...written.file!].sort((a, b) => a - b)[written.file!.length >> 1]!;
    if (written.s3!.some((b) => Math.abs(b - fileMedian) > fileMedian / 100))
      throw new Error(
        `bench: s3 objects ${written.s3!.join(", ")} bytes against files of ${written.file!.join(", ")}`,
      );
    results.rows.push({
      name: "export to s3:// vs to a local file",
      vm: exported["vm export to s3://"]!,
      baseline: exported["vm export to a file"]!,
      baselineName: "vm snapshot export to a local file (zstd)",
      target: 1.2,
    });
    results.memory.push({ name: "export to s3://", imageBytes, peakRssMb: exportRss / 1024 });

    // The archives the import rounds read: one export each, untimed.
    run(vm, ["snapshot", "export", `@${SNAPSHOT}`, "--output", url], { env });
    run(vm, ["snapshot", "export", `@${SNAPSHOT}`, "--output", file], { env });
    const inputBytes = { s3: server.size(KEY), file: statSync(file).size };

    // 2. Import (streamed GetObject) against the import of a local file, into an engine without the image.
    if (!second)
      log(
        `bench: s3: no second engine at ${SECOND_ENGINE}; importing into the first (its layers are shared)\n`,
      );
    log(`bench: s3: import into ${host}, ${options.rounds} round(s)\n`);
    let importRss = 0;
    let importFileRss = 0;
    forget();
    const importCpuBefore = server.cpu();
    const imported = alternate(options.rounds, [
      {
        name: "vm import from s3://",
        before: forget,
        measure: () => {
          const r = vmTimed(vm, ["snapshot", "import", url, "--name", IMPORTED, "--force"], { env: envB });
          mustLoad("vm snapshot import s3://", r.stdout);
          importRss = Math.max(importRss, r.rssKb);
          return r.seconds;
        },
      },
      {
        name: "vm import from a file",
        before: forget,
        measure: () => {
          const r = vmTimed(vm, ["snapshot", "import", file, "--name", IMPORTED, "--force"], { env: envB });
          mustLoad("vm snapshot import FILE", r.stdout);
          importFileRss = Math.max(importFileRss, r.rssKb);
          return r.seconds;
        },
      },
    ]);
    const importCpu = server.cpu() - importCpuBefore;
    results.rows.push({
      name: "import from s3:// vs from a local file",
      vm: imported["vm import from s3://"]!,
      baseline: imported["vm import from a file"]!,
      baselineName: "vm snapshot import of a local file (zstd)",
      target: 1.2,
    });
    results.memory.push({ name: "import from s3://", imageBytes, peakRssMb: importRss / 1024 });

    results.facts = {
      image,
      imageBytes,
      s3: `fauxqs ${fauxqsVersion()} on loopback, plain HTTP, objects kept in its memory`,
      exportEngine: run("docker", ["version", "--format", "{{.Server.Version}}"]),
      importEngine: run("docker", ["-H", host, "version", "--format", "{{.Server.Version}}"]),
      rounds: options.rounds,
      /** The object's size (HeadObject) and the file's after each timed export. */
      exportedBytes: written,
      /** The object and the file each import round read. */
      importedBytes: inputBytes,
      fauxqsPeakRssMb: Math.round(server.peakNow() / 1024),
      /** The emulator's own CPU time over all s3:// rounds (it shares the machine with vm and the engine). */
      fauxqsCpuSeconds: { export: Number(exportCpu.toFixed(1)), import: Number(importCpu.toFixed(1)) },
      /** vm's peak RSS in the local-file contenders, for comparison with the memory rows. */
      localFilePeakRssMb: {
        export: Math.round(exportFileRss / 1024),
        import: Math.round(importFileRss / 1024),
      },
    };
    return results;
  } finally {
    forget();
    spawnSync(vm, ["snapshot", "delete", `@${SNAPSHOT}`, "--force"], { env });
    server.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
