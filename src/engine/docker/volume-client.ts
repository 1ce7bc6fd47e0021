import type { VolumeClient, VolumeSummary } from "../engine.ts";
import { labelFilter, type DockerHttp } from "../transport/http.ts";

const enc = encodeURIComponent;

export class DockerVolumeClient implements VolumeClient {
  private readonly http: DockerHttp;

  constructor(http: DockerHttp) {
    this.http = http;
  }

  async ensure(name: string, labels: Record<string, string>): Promise<void> {
    await this.http.call("POST", "/volumes/create", `Creating volume ${name}`, {
      body: { Name: name, Labels: labels },
    });
  }

  async list(labels: Record<string, string>): Promise<VolumeSummary[]> {
    const raw = await this.http.json<{
      Volumes: { Name: string; Labels: Record<string, string> | null }[] | null;
    }>("GET", "/volumes", "Listing volumes", { query: { filters: labelFilter(labels) } });
    return (raw.Volumes ?? []).map((v) => ({ name: v.Name, labels: v.Labels ?? {} }));
  }

  async remove(name: string): Promise<void> {
    await this.http.call("DELETE", `/volumes/${enc(name)}`, `Removing volume ${name}`, { accept: [404] });
  }
}
