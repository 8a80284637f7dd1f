/** Which worker answered a request: new connections per request, and the pid on the request's access line. */
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';

/** An SDK client that opens a new connection for every request and never retries (an answer is the answer). */
export function freshConnections(url: string, creds: { accessKeyId: string; secretAccessKey: string }): S3Client {
  return new S3Client({
    endpoint: url,
    region: 'us-east-1',
    credentials: creds,
    forcePathStyle: true,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: false }), requestTimeout: 60_000 }),
  });
}

/** The request id of an SDK answer or error. */
export const requestIdOf = (x: unknown): string | undefined => (x as { $metadata?: { requestId?: string } }).$metadata?.requestId;

/** The pid of the worker that wrote the access line of each request id (waiting for the lines to arrive). */
export async function servedBy(logs: string[], ids: string[]): Promise<Map<string, number>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pids = new Map<string, number>();
    for (const line of logs) {
      if (!line.includes('"msg":"request"')) continue;
      const entry = JSON.parse(line) as { requestId?: string; pid?: number };
      if (entry.requestId !== undefined && entry.pid !== undefined && ids.includes(entry.requestId)) pids.set(entry.requestId, entry.pid);
    }
    if (pids.size === ids.length) return pids;
    if (Date.now() > deadline) throw new Error(`no access line for ${ids.length - pids.size} of ${ids.length} requests`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
