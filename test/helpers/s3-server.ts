// An S3-compatible server on 127.0.0.1 for the tests: fauxqs (an npm dev dependency, pure JavaScript),
// started in the test's own process on a free port, its objects kept in memory.
import { S3Client, PutObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { startFauxqs } from "fauxqs";

export interface S3Server {
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
  const endpoint = `http://127.0.0.1:${server.port}`;
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
      await server.stop();
    },
  };
}
