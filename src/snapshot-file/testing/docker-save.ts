/**
 * Test support: synthetic `docker save` streams, in both layouts the format allows (Docker 20.10's
 * classic one and the OCI layout of the containerd store), whose config blob's sha256 is the image ID and
 * whose layers hash to the config's diff IDs. `edit` lets a test break exactly one of those facts.
 */
import { createHash } from "node:crypto";
import { tarBytes, type TarItem } from "./tar.ts";

export type SaveLayout = "legacy" | "oci";

export interface SavedImage {
  layout: SaveLayout;
  /** The whole save stream. */
  tar: Buffer;
  /** sha256 of the config JSON: the manifest's image_digest. */
  configDigest: string;
  /** The config's rootfs.diff_ids: the manifest's layers. */
  diffIds: string[];
  /** Path of the config inside the save. */
  configPath: string;
  /** Digest of the OCI manifest blob (the containerd store's image ID); the config digest for legacy. */
  engineId: string;
  items: TarItem[];
}

export interface SaveOptions {
  layout?: SaveLayout;
  /** Contents of each layer's files; each layer becomes a small tar. */
  layers?: Record<string, string | Buffer>[];
  /** Replaces the config's diff_ids (the real layers keep their own hashes). */
  diffIds?: string[];
  /** Extra fields for the config JSON. */
  config?: Record<string, unknown>;
  /** Edits the list of entries just before they are packed (after every digest was computed). */
  edit?: (items: TarItem[], info: { configPath: string; layerPaths: string[] }) => void;
}

export const sha256hex = (data: Buffer | string): string => createHash("sha256").update(data).digest("hex");

export function layerTar(files: Record<string, string | Buffer>): Buffer {
  return tarBytes(Object.entries(files).map(([name, data]) => ({ name, data })));
}

export function dockerSave(options: SaveOptions = {}): SavedImage {
  const layout = options.layout ?? "legacy";
  const layers = (
    options.layers ?? [{ "etc/hello": "hello\n" }, { "usr/bin/tool": "#!/bin/sh\necho hi\n" }]
  ).map(layerTar);
  const realDiffIds = layers.map((l) => `sha256:${sha256hex(l)}`);
  const diffIds = options.diffIds ?? realDiffIds;
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Env: ["PATH=/usr/local/bin:/usr/bin:/bin"], Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: diffIds },
      history: layers.map((_, i) => ({ created_by: `step ${i}` })),
      ...options.config,
    }),
  );
  const configHex = sha256hex(config);
  const items: TarItem[] = [];
  let configPath: string;
  let layerPaths: string[];
  let engineId = `sha256:${configHex}`;
  if (layout === "legacy") {
    // Docker 20.10: one folder per layer (named by a v1 ID), <config>.json, manifest.json; no
    // repositories file when the image is saved by ID.
    layerPaths = layers.map((l, i) => `${sha256hex(`v1-${i}-${sha256hex(l)}`)}/layer.tar`);
    layers.forEach((layer, i) => {
      const dir = layerPaths[i]!.split("/")[0]!;
      items.push(
        { name: `${dir}/`, type: "directory" },
        { name: `${dir}/VERSION`, data: "1.0" },
        { name: `${dir}/json`, data: JSON.stringify({ id: dir }) },
        { name: layerPaths[i]!, data: layer },
      );
    });
    configPath = `${configHex}.json`;
    items.push({ name: configPath, data: config });
    items.push({
      name: "manifest.json",
      data: JSON.stringify([{ Config: configPath, RepoTags: null, Layers: layerPaths }]),
    });
  } else {
    configPath = `blobs/sha256/${configHex}`;
    layerPaths = layers.map((l) => `blobs/sha256/${sha256hex(l)}`);
    const ociManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: `sha256:${configHex}`,
          size: config.length,
        },
        layers: layers.map((l) => ({
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: `sha256:${sha256hex(l)}`,
          size: l.length,
        })),
      }),
    );
    const manifestHex = sha256hex(ociManifest);
    engineId = `sha256:${manifestHex}`;
    items.push({ name: "blobs/", type: "directory" }, { name: "blobs/sha256/", type: "directory" });
    layers.forEach((layer, i) => items.push({ name: layerPaths[i]!, data: layer }));
    items.push({ name: configPath, data: config });
    items.push({ name: `blobs/sha256/${manifestHex}`, data: ociManifest });
    items.push({
      name: "index.json",
      data: JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: engineId,
            size: ociManifest.length,
          },
        ],
      }),
    });
    items.push({
      name: "manifest.json",
      data: JSON.stringify([{ Config: configPath, RepoTags: null, Layers: layerPaths }]),
    });
    items.push({ name: "oci-layout", data: '{"imageLayoutVersion":"1.0.0"}' });
  }
  options.edit?.(items, { configPath, layerPaths });
  return {
    layout,
    tar: tarBytes(items),
    configDigest: `sha256:${configHex}`,
    diffIds,
    configPath,
    engineId,
    items,
  };
}
