/** The Engine API's JSON shapes, as far as vm reads them. */
export interface RawInfo {
  ServerVersion?: string;
  OSType?: string;
  Architecture?: string;
  Driver?: string;
  DriverStatus?: [string, string][] | null;
  DockerRootDir?: string;
  NCPU?: number;
  MemTotal?: number;
}

export interface RawImage {
  Id: string;
  RepoTags?: string[] | null;
  Parent?: string;
  RootFS?: { Layers?: string[] };
  Size?: number;
  Created?: string;
  Os?: string;
  Architecture?: string;
  Variant?: string;
  Config?: {
    Labels?: Record<string, string> | null;
    User?: string;
    WorkingDir?: string;
    Env?: string[] | null;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    ExposedPorts?: Record<string, object> | null;
  } | null;
}

export interface RawImageSummary {
  Id: string;
  RepoTags?: string[] | null;
  Labels?: Record<string, string> | null;
  Size?: number;
}

export interface RawContainer {
  Id: string;
  Name: string;
  Image: string;
  Created: string;
  Config?: { Image?: string; Labels?: Record<string, string> | null };
  State: { Status: string; Running: boolean; Paused: boolean; StartedAt: string; ExitCode: number };
  HostConfig?: { Memory?: number; NanoCpus?: number };
  Mounts?: { Type: string; Source: string; Destination: string; Name?: string }[];
  NetworkSettings?: { Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> };
}

export interface RawContainerSummary {
  Id: string;
  Names?: string[];
  Image: string;
  ImageID: string;
  State: string;
  Status: string;
  Labels?: Record<string, string> | null;
  Created: number;
}
