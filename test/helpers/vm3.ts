import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { docker, type TestEngine } from "./engines.ts";
import { ensureBusybox } from "./fixtures.ts";
import { RUN_ID, TEST_LABEL } from "./vm.ts";

/**
 * Snapshot files as vm 3.x (the Rust tool, 3.4.0) wrote them, made the way it made them (see its
 * rust/vm/src/commands/snapshot/export.rs): the image saved BY TAG (`vm-snapshot/global/<name>:latest`),
 * so its tar names the tag; metadata.json with the image ID `docker inspect` reports; manifest.json with
 * sorted keys and version "1.0"; volumes archived by busybox `tar czf -C /data .`; one gzip tar written
 * with GNU headers whose first entry is the folder "./", entries in no fixed order (here: the image
 * before the documents, the harder order for a streaming reader).
 */
export interface Vm3Options {
  engine: TestEngine;
  name: string;
  /** Written into the image as /marker. */
  marker: string;
  global: boolean;
  project?: string;
  /** Volume name -> a file /data/<file> inside it with this content. */
  volumes?: Record<string, { file: string; content: string }>;
  volumeCompression?: "gzip" | "zstd";
  /** Changes metadata.json before it is written (to make hostile or damaged files). */
  changeMetadata?: (metadata: Record<string, unknown>) => void;
  /** Extra entries [path, content] written into the outer tar. */
  extra?: [string, string][];
}

export function makeVm3File(dir: string, options: Vm3Options): string {
  const { engine, name } = options;
  const work = mkdtempSync(join(tmpdir(), "vm3-"));
  const root = join(work, "snapshot");
  mkdirSync(join(root, "images"), { recursive: true });
  try {
    const build = join(work, "build");
    mkdirSync(build);
    writeFileSync(
      join(build, "Dockerfile"),
      // The label first, so that the build's step images carry it too: the cleanup finds them by label.
      `FROM ${ensureBusybox(engine)}\nLABEL ${TEST_LABEL}=${RUN_ID}\nRUN echo ${options.marker} > /marker\n`,
    );
    const tag = options.global
      ? `vm-snapshot/global/${name}:latest`
      : `vm-snapshot/${options.project}/dev:${name}`;
    docker(engine, ["build", "-q", "-t", tag, build]);
    docker(engine, ["save", tag, "-o", join(root, "images", "base.tar")]);
    const imageId = docker(engine, ["image", "inspect", "-f", "{{.Id}}", tag]);
    const volumes: { name: string; archive_file: string; size_bytes: number }[] = [];
    const ext = options.volumeCompression === "zstd" ? "tar.zst" : "tar.gz";
    for (const [volume, data] of Object.entries(options.volumes ?? {})) {
      mkdirSync(join(root, "volumes"), { recursive: true });
      const engineVolume = `${options.project}_${volume}-${RUN_ID}`;
      docker(engine, ["volume", "create", "--label", `${TEST_LABEL}=${RUN_ID}`, engineVolume]);
      const busybox = ensureBusybox(engine);
      docker(engine, [
        "run",
        "--rm",
        "-v",
        `${engineVolume}:/data`,
        busybox,
        "sh",
        "-c",
        `printf '%s' '${data.content}' > /data/${data.file}`,
      ]);
      const archive = join(root, "volumes", `${volume}.${ext}`);
      // As vm 3.x did, inside a container; streamed out here since the engine may not see this folder.
      const tarBytes = execFileSync(
        "docker",
        [
          "-H",
          engine.host,
          "run",
          "--rm",
          "-v",
          `${engineVolume}:/data`,
          busybox,
          "tar",
          "c",
          "-C",
          "/data",
          ".",
        ],
        {
          maxBuffer: 64 * 1024 * 1024,
        },
      );
      writeFileSync(join(work, "volume.tar"), tarBytes);
      if (options.volumeCompression === "zstd")
        execFileSync("zstd", ["-q", "-3", join(work, "volume.tar"), "-o", archive]);
      else
        writeFileSync(
          archive,
          execFileSync("gzip", ["-c", join(work, "volume.tar")], { maxBuffer: 64 * 1024 * 1024 }),
        );
      docker(engine, ["volume", "rm", engineVolume]);
      volumes.push({ name: volume, archive_file: `${volume}.${ext}`, size_bytes: statSync(archive).size });
    }
    const createdAt = "2025-10-30T20:27:20.123456789Z";
    const metadata: Record<string, unknown> = {
      name,
      created_at: createdAt,
      description: options.global
        ? "Base image snapshot created from Dockerfile"
        : `snapshot of ${options.project}`,
      project_name: options.global ? "global" : options.project,
      project_dir: "/home/me/proj",
      git_commit: options.global ? null : "0123456789abcdef0123456789abcdef01234567",
      git_dirty: false,
      git_branch: options.global ? null : "main",
      services: [
        {
          name: options.global ? "base" : "dev",
          image_tag: tag,
          image_file: "base.tar",
          image_digest: imageId,
        },
      ],
      volumes,
      compose_file: options.global ? "" : "docker-compose.yml",
      vm_config_file: options.global ? "" : "vm.yaml",
      total_size_bytes: statSync(join(root, "images", "base.tar")).size,
    };
    options.changeMetadata?.(metadata);
    writeFileSync(join(root, "metadata.json"), JSON.stringify(metadata, null, 2));
    const manifest = {
      created_at: createdAt,
      description: metadata.description,
      is_global: options.global,
      project_name: metadata.project_name,
      services: 1,
      snapshot_name: name,
      total_size_bytes: metadata.total_size_bytes,
      version: "1.0",
      volumes: volumes.length,
    };
    writeFileSync(join(root, "manifest.json"), JSON.stringify(manifest, null, 2));
    const entries = [
      "images",
      "images/base.tar",
      ...volumes.flatMap((v, i) => (i === 0 ? ["volumes"] : []).concat(`volumes/${v.archive_file}`)),
    ];
    if (!options.global) {
      mkdirSync(join(root, "compose"));
      writeFileSync(join(root, "compose", "vm.yaml"), `project:\n  name: ${options.project}\n`);
      entries.push("compose", "compose/vm.yaml");
    }
    entries.push("metadata.json", "manifest.json");
    for (const [path, content] of options.extra ?? []) {
      writeFileSync(join(root, path), content);
      entries.push(path);
    }
    const out = join(dir, `${name}.snapshot.tar.gz`);
    execFileSync("python3", [
      "-c",
      [
        "import gzip, os, sys, tarfile",
        "out, root, names = sys.argv[1], sys.argv[2], sys.argv[3:]",
        "with gzip.open(out, 'wb', compresslevel=6) as gz:",
        "    with tarfile.open(fileobj=gz, mode='w', format=tarfile.GNU_FORMAT) as t:",
        "        t.add(root, arcname='./', recursive=False)",
        "        for n in names: t.add(os.path.join(root, n), arcname=n, recursive=False)",
      ].join("\n"),
      out,
      root,
      ...entries,
    ]);
    // The machine that imports it must not have the image yet.
    docker(engine, ["rmi", "-f", tag]);
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
