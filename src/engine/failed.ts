import type { ContainerClient, Endpoint, Engine, EngineInfo, ImageClient, VolumeClient } from "./engine.ts";

/**
 * The engine vm has when it could not build a client (an unsupported or malformed DOCKER_HOST): every call
 * fails with the reason, so a command that needs no engine still runs and one that does reports why. Each
 * method is written out, so adding one to `Engine` without deciding what it does here fails to compile.
 */
export class FailedEngine implements Engine {
  readonly endpoint: Endpoint;
  readonly images: ImageClient;
  readonly containers: ContainerClient;
  readonly volumes: VolumeClient;
  readonly #reason: Error;

  constructor(reason: unknown, endpoint: Endpoint) {
    this.#reason = reason instanceof Error ? reason : new Error(String(reason));
    this.endpoint = endpoint;
    const fail = (): Promise<never> => Promise.reject(this.#reason);
    this.images = {
      build: fail,
      inspect: fail,
      history: fail,
      list: fail,
      remove: fail,
      pull: fail,
      pullFrom: fail,
      push: fail,
      tag: fail,
      save: fail,
      load: fail,
    };
    this.containers = {
      create: fail,
      start: fail,
      stop: fail,
      remove: fail,
      inspect: fail,
      list: fail,
      pause: fail,
      unpause: fail,
      commit: fail,
      createHelper: fail,
      getArchive: fail,
      putArchive: fail,
      runOnce: fail,
      exec: fail,
      logs: fail,
    };
    this.volumes = { ensure: fail, list: fail, remove: fail };
  }

  info(): Promise<EngineInfo> {
    return Promise.reject(this.#reason);
  }

  close(): void {}

  explain(error: unknown): unknown {
    return error;
  }
}
