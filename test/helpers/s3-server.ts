// An S3-compatible server on 127.0.0.1 for the tests: fauxqs (an npm dev dependency, pure JavaScript),
// started in the test's own process on a free port, its objects kept in memory.
import { S3Client, PutObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { startFauxqs } from "fauxqs";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the store answered: what the S3 API call was, as sent on the wire. */
export interface S3Request {
  method: string;
  url: string;
  status: number;
}

export interface S3Server {
  /** Every request that came through the endpoint, in order (AbortMultipartUpload: DELETE ...?uploadId=). */
  requests: S3Request[];
  /** http://127.0.0.1:PORT, what --endpoint and AWS_ENDPOINT_URL_S3 take. */
  endpoint: string;
  /** The environment vm needs to reach it: endpoint, a region and (any) static credentials. */
  env: Record<string, string>;
  createBucket(name: string): void;
  put(bucket: string, key: string, body: Buffer): Promise<string>;
  /** The object's size and ETag, undefined when it is absent. */
  head(bucket: string, key: string): Promise<{ size: number; etag: string } | undefined>;
  close(): Promise<void>;
}

export async function startS3Server(): Promise<S3Server> {
  const server = await startFauxqs({ port: 0, host: "127.0.0.1", logger: false });
  // A recording front: fauxqs cannot list multipart uploads, so the tests see the calls themselves.
  const requests: S3Request[] = [];
  const front = createServer((req, res) => {
    const upstream = request(
      { host: "127.0.0.1", port: server.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        requests.push({ method: req.method ?? "", url: req.url ?? "", status: answer.statusCode ?? 0 });
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
  const env = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "vmtest",
    AWS_SECRET_ACCESS_KEY: "vmtest-secret",
    AWS_EC2_METADATA_DISABLED: "true",
  };
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  return {
    requests,
    endpoint,
    env,
    createBucket: (name) => void server.createBucket(name),
    put: async (bucket, key, body) =>
      (await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))).ETag ?? "",
    head: async (bucket, key) => {
      try {
        const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { size: res.ContentLength ?? 0, etag: res.ETag ?? "" };
      } catch {
        return undefined;
      }
    },
    close: async () => {
      client.destroy();
      front.closeAllConnections();
      await new Promise((resolve) => front.close(resolve));
      await server.stop();
    },
  };
}
