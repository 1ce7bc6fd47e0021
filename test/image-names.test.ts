import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import tar from "tar-stream";
import { readEntries, resealed, writeEntries, type Entry } from "./helpers/archives.ts";
import { engineState } from "./helpers/engine-names.ts";
import { availableEngines, docker, type TestEngine } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import {
  cleanupRun,
  exportedSnapshot,
  makeProject,
  RUN_ID,
  runVm,
  TEST_LABEL,
  uniqueName,
} from "./helpers/vm.ts";

/**
 * Item 14 of issue 10: importing a snapshot file must not re-point any tag on the engine. A file whose
 * images/base.tar names tags (RepoTags, the legacy repositories file, an OCI image-name annotation), with
 * every checksum consistent, is refused before the engine applies the names; the engine's tags, images and
 * volumes are as they were, on both save layouts and both engines.
 */
const engines = availableEngines();
const dir = mkdtempSync(join(tmpdir(), "vm-names-"));
const name = uniqueName("names");

interface TarItem {
  header: Partial<tar.Header> & { name: string };
  data: Buffer;
}

async function unpack(bytes: Buffer): Promise<TarItem[]> {
  const extract = tar.extract();
  const items: TarItem[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      items.push({ header: { ...entry.header, name: entry.header.name }, data: Buffer.concat(chunks) });
    }
  })();
  Readable.from([bytes]).pipe(extract);
  await done;
  return items;
}

async function pack(items: TarItem[]): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of p) chunks.push(chunk as Buffer);
  })();
  for (const item of items) {
    const header = { ...item.header, size: item.header.type === "file" ? item.data.length : 0 };
    if (header.type === "file") p.entry(header, item.data);
    else p.entry(header);
  }
  p.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** A copy of a real export whose image tar was changed, every checksum sealed again as a forger would. */
async function forged(
  entries: Entry[],
  change: (items: TarItem[]) => TarItem[],
  file: string,
): Promise<string> {
  const out = await Promise.all(
    entries.map(async (e) =>
      e.name === "images/base.tar" ? { ...e, data: await pack(change(await unpack(e.data))) } : { ...e },
    ),
  );
  await writeEntries(
    file,
    resealed(out, () => {}),
  );
  return file;
}

const json = (item: TarItem) => JSON.parse(item.data.toString("utf8")) as unknown;
const setJson = (item: TarItem, value: unknown) => ({ ...item, data: Buffer.from(JSON.stringify(value)) });
const file = (path: string, data: string): TarItem => ({
  header: { name: path, type: "file", mode: 0o644, mtime: new Date(0) },
  data: Buffer.from(data),
});

describe("an import changes nothing in the engine but its own snapshot", () => {
  /** One real export per save layout: the legacy one (classic store) and the OCI one (containerd store). */
  const exports = new Map<TestEngine, Entry[]>();
  const victims = new Map<TestEngine, { tag: string; id: string }>();
  const homes = new Map<TestEngine, string>();
  let tried = 0;

  before(async () => {
    for (const engine of engines) {
      const home = join(dir, `home-${engine.name}`);
      homes.set(engine, home);
      const env = { XDG_CONFIG_HOME: home };
      const out = await exportedSnapshot(engine, {
        dir,
        home,
        name,
        dockerfile: `FROM ${ensureBusybox(engine)}\nRUN echo ${name} > /marker\n`,
        out: join(dir, `${engine.name}.snapshot.tar.gz`),
      });
      exports.set(engine, await readEntries(out));
      // The image must not be in the engines already, or import would not load it at all.
      assert.equal((await runVm(["snapshot", "delete", `@${name}`], { cwd: dir, engine, env })).code, 0);
      // A tag the hostile files try to take over: an image of this run's own, so no other test moves it.
      const victimDir = makeProject({
        Dockerfile: `FROM ${ensureBusybox(engine)}\nLABEL ${TEST_LABEL}=${RUN_ID} victim=1\n`,
      });
      const tag = `vmbars-${RUN_ID.replace(/[^a-z0-9]/g, "")}/victim:1`;
      docker(engine, ["build", "-q", "-t", tag, victimDir.dir]);
      victimDir.cleanup();
      victims.set(engine, { tag, id: docker(engine, ["image", "inspect", "-f", "{{.Id}}", tag]) });
    }
  });

  after(() => {
    console.log(`hostile name cases tried: ${tried}`);
    for (const engine of engines) {
      const victim = victims.get(engine);
      if (victim) docker(engine, ["rmi", "-f", victim.tag]);
      cleanupRun(engine);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const NAMES = /^Error: images\/base\.tar names image tags \(.+\): loading it would point those tags/;

  async function refusedEverywhere(path: string, what: string, message = NAMES): Promise<void> {
    for (const engine of engines) {
      tried++;
      const victim = victims.get(engine)!;
      const stateBefore = engineState(engine);
      const res = await runVm(["snapshot", "import", path, "--name", `${name}-x`], {
        cwd: dir,
        engine,
        env: { XDG_CONFIG_HOME: homes.get(engine)! },
      });
      assert.equal(res.code, 7, `${what} on ${engine.name}: ${res.stdout}${res.stderr}`);
      assert.match(res.stderr, message);
      assert.match(res.stderr, /\nHint: Do not import this file/);
      assert.equal(
        docker(engine, ["image", "inspect", "-f", "{{.Id}}", victim.tag]),
        victim.id,
        `${what}: victim tag moved`,
      );
      assert.deepEqual(engineState(engine), stateBefore, `${what} on ${engine.name}: the engine changed`);
      const global = join(homes.get(engine)!, "vm", "snapshots", "global");
      assert.deepEqual(existsSync(global) ? readdirSync(global) : [], [], "nothing registered");
    }
  }

  it("refuses RepoTags in the image's manifest.json, on both save layouts and both engines", async () => {
    for (const [source, entries] of exports) {
      const path = await forged(
        entries,
        (items) =>
          items.map((item) => {
            if (item.header.name !== "manifest.json") return item;
            const [first] = json(item) as Record<string, unknown>[];
            return setJson(item, [
              { ...first, RepoTags: [victims.get(source)!.tag, victims.get(engines.at(-1)!)!.tag] },
            ]);
          }),
        join(dir, `repotags-${source.name}.snapshot.tar.gz`),
      );
      await refusedEverywhere(path, `RepoTags (${source.imageStore} layout)`);
    }
  });

  it("refuses a legacy repositories file, with or without a manifest.json beside it", async () => {
    for (const [source, entries] of exports) {
      const tags = [...victims.values()].map((v) => v.tag.split(":")[0]!);
      const repositories = Object.fromEntries(tags.map((repo) => [repo, { "1": "a".repeat(64) }]));
      const withFile = await forged(
        entries,
        (items) => [...items, file("repositories", JSON.stringify(repositories))],
        join(dir, `repositories-${source.name}.snapshot.tar.gz`),
      );
      await refusedEverywhere(withFile, `repositories (${source.imageStore} layout)`);
      if (source.imageStore !== "classic") continue;
      // Without manifest.json the classic store falls back to the legacy loader, which reads repositories.
      const legacyOnly = await forged(
        entries,
        (items) => [
          ...items.filter((i) => i.header.name !== "manifest.json"),
          file("repositories", JSON.stringify(repositories)),
        ],
        join(dir, `legacy-${source.name}.snapshot.tar.gz`),
      );
      await refusedEverywhere(legacyOnly, "repositories without manifest.json");
    }
  });

  it("refuses image-name annotations in an OCI index.json", async () => {
    const oci = [...exports].find(([engine]) => engine.imageStore === "containerd");
    if (!oci) return;
    for (const key of ["io.containerd.image.name", "org.opencontainers.image.ref.name"]) {
      const path = await forged(
        oci[1],
        (items) =>
          items.map((item) => {
            if (item.header.name !== "index.json") return item;
            const index = json(item) as { manifests: Record<string, unknown>[] };
            index.manifests = index.manifests.map((m) => ({
              ...m,
              annotations: { [key]: key.startsWith("io.") ? `docker.io/${victims.get(oci[0])!.tag}` : "1" },
            }));
            return setJson(item, index);
          }),
        join(dir, `annotation-${key}.snapshot.tar.gz`),
      );
      await refusedEverywhere(path, `index.json ${key}`);
    }
  });

  it("refuses a name file hidden under another path or reached through a link", async () => {
    for (const [source, entries] of exports) {
      const victim = victims.get(source)!.tag;
      const hidden = await forged(
        entries,
        (items) => [
          ...items,
          file(`blobs/sha256/${"f".repeat(64)}`, JSON.stringify([{ RepoTags: [victim] }])),
        ],
        join(dir, `hidden-${source.name}.snapshot.tar.gz`),
      );
      await refusedEverywhere(hidden, "a RepoTags document under blobs/");
      const linked = await forged(
        entries,
        (items) => {
          const manifest = items.find((i) => i.header.name === "manifest.json")!;
          const [first] = json(manifest) as Record<string, unknown>[];
          const blob = `blobs/sha256/${"e".repeat(64)}`;
          return [
            ...items.filter((i) => i !== manifest),
            file(blob, JSON.stringify([{ ...first, RepoTags: [victim] }])),
            {
              header: { name: "manifest.json", type: "symlink", linkname: blob, mode: 0o777 },
              data: Buffer.alloc(0),
            },
          ];
        },
        join(dir, `linked-${source.name}.snapshot.tar.gz`),
      );
      await refusedEverywhere(
        linked,
        "manifest.json as a link to a RepoTags document",
        /^Error: images\/base\.tar cannot be loaded safely: 'manifest\.json' is a symlink/,
      );
    }
  });

  it("a genuine import, and --force over it, change only the snapshot's own tag and image", async () => {
    for (const engine of engines) {
      const entries = exports.get(engines[0]!)!;
      const path = join(dir, `genuine-${engine.name}.snapshot.tar.gz`);
      await writeEntries(path, entries);
      const env = { XDG_CONFIG_HOME: homes.get(engine)! };
      const stateBefore = engineState(engine);
      const first = await runVm(["snapshot", "import", path, "--name", `${name}-ok`], {
        cwd: dir,
        engine,
        env,
      });
      assert.equal(first.code, 0, first.stderr);
      const imported = docker(engine, ["image", "inspect", "-f", "{{.Id}}", `vm-snapshot/global:${name}-ok`]);
      const added = engineState(engine).filter((l) => !stateBefore.includes(l));
      assert.deepEqual(added, [`tag vm-snapshot/global:${name}-ok -> ${imported}`]);
      assert.deepEqual(
        stateBefore.filter((l) => !engineState(engine).includes(l)),
        [],
        "nothing removed",
      );
      // A hostile file over it with --force is refused, and the snapshot it would replace stays whole.
      const hostile = await forged(
        entries,
        (items) =>
          items.map((item) =>
            item.header.name === "manifest.json"
              ? setJson(item, [
                  { ...(json(item) as Record<string, unknown>[])[0], RepoTags: [victims.get(engine)!.tag] },
                ])
              : item,
          ),
        join(dir, `force-${engine.name}.snapshot.tar.gz`),
      );
      const forced = await runVm(["snapshot", "import", hostile, "--name", `${name}-ok`, "--force"], {
        cwd: dir,
        engine,
        env,
      });
      // The engine already has this image, so the file's image tar is not read: nothing of it is loaded.
      if (forced.code === 0) assert.match(forced.stdout, /already had this image/);
      else assert.equal(forced.code, 7, forced.stderr);
      assert.equal(
        docker(engine, ["image", "inspect", "-f", "{{.Id}}", `vm-snapshot/global:${name}-ok`]),
        imported,
      );
      assert.equal(
        docker(engine, ["image", "inspect", "-f", "{{.Id}}", victims.get(engine)!.tag]),
        victims.get(engine)!.id,
      );
      assert.equal((await runVm(["snapshot", "delete", `@${name}-ok`], { cwd: dir, engine, env })).code, 0);
    }
  });
});
