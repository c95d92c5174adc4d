/**
 * Prometheus metrics, all named osp_*, as object-storage-proxy names them (with osp's operation
 * label added to requests_total). Each worker keeps its own; the primary sums them (server.ts).
 * Label values are bounded: methods S3 uses, configured bucket names (anything else is "other"),
 * S3 operation names, status codes and osp's own S3 error codes.
 */
import type { IncomingMessage, ServerResponse, Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import pkg from "../../package.json" with { type: "json" };

export const registry = new Registry();

const METHODS = new Set(["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"]);

/** What the app knows of a request once it has its response. */
export interface RequestLabels {
  method: string;
  /** The bucket the client named; "" for the service (ListBuckets). */
  bucket: string;
  operation: string;
  status: number;
  /** The S3 error code osp answered with, if it answered the error itself. */
  error?: string;
}

export interface RequestMeasure {
  /** The labels, once the response is known, and the request body, whose bytes read are counted when the response ends. */
  done(labels: RequestLabels, body?: { received: number }): void;
}

export interface Metrics {
  /** Counts the connections of a listener. */
  watch(server: Server): void;
  /**
   * Starts measuring a request; its figures are recorded when the response is done. `buckets`
   * are those configured: any other name is labelled "other".
   */
  begin(incoming: IncomingMessage, outgoing: ServerResponse, buckets: ReadonlyMap<string, unknown>): RequestMeasure;
  /** A presigned request for a configured bucket got past authorization: allowed, or refused as used up. */
  presignedUse(bucket: string, allowed: boolean): void;
}

export function createMetrics(): Metrics {
  // not prom-client's default process metrics: they cost ~40 µs of CPU per 1 KiB GET (README)
  const registers = [registry];
  const methodLabel = (method: string) => (METHODS.has(method) ? method : "other");

  const requests = new Counter({ name: "osp_requests_total", help: "Requests answered", labelNames: ["method", "bucket", "status", "operation"], registers });
  const errors = new Counter({
    name: "osp_request_errors_total",
    help: "Requests answered with an error: osp's S3 error code, backend_<status> for a backend's, or ResponseIncomplete when the response was cut short",
    labelNames: ["method", "bucket", "error"], registers,
  });
  const transfer = new Counter({ name: "osp_transfer_bytes_total", help: "Body bytes received from clients (rx) and sent to them (tx)", labelNames: ["direction", "bucket"], registers });
  const hits = new Counter({ name: "osp_presigned_url_hits_total", help: "Presigned requests authenticated, authorized and let through", labelNames: ["bucket"], registers });
  const rejected = new Counter({ name: "osp_presigned_url_rejected_total", help: "Presigned requests refused because the URL was used up", labelNames: ["bucket"], registers });
  const active = new Gauge({ name: "osp_active_connections", help: "Open client connections", registers });
  new Gauge({
    name: "osp_memory_bytes", help: "Resident memory of the worker processes", registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({ name: "osp_build_info", help: "osp's version and runtime", labelNames: ["version", "bun"], registers, aggregator: "first" })
    .set({ version: pkg.version, bun: Bun.version }, 1);
  const duration = new Histogram({
    name: "osp_request_duration_seconds", help: "Time from a request's arrival to the last byte of its response",
    labelNames: ["method", "bucket"], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers,
  });
  const size = new Histogram({
    name: "osp_response_size_bytes", help: "Body bytes sent per response",
    labelNames: ["method", "bucket"], buckets: [0, 1024, 16384, 262144, 1048576, 16777216, 268435456, 1073741824, 17179869184], registers,
  });

  return {
    watch(server) {
      server.on("connection", (socket) => {
        active.inc();
        socket.once("close", () => active.dec());
      });
    },
    begin(incoming, outgoing, buckets) {
      const started = performance.now();
      // Bun's node:http counts what each response wrote on its socket (body bytes)
      const socket = incoming.socket;
      const written0 = socket.bytesWritten;
      return {
        done: (labels, body) => outgoing.once("close", () => {
          const method = methodLabel(labels.method);
          const bucket = labels.bucket === "" || buckets.has(labels.bucket) ? labels.bucket : "other";
          const sent = socket.bytesWritten - written0;
          requests.inc({ method, bucket, status: labels.status, operation: labels.operation });
          const error = !outgoing.writableFinished ? "ResponseIncomplete" : labels.error ?? (labels.status >= 400 ? `backend_${labels.status}` : undefined);
          if (error) errors.inc({ method, bucket, error });
          transfer.inc({ direction: "rx", bucket }, body?.received ?? 0);
          transfer.inc({ direction: "tx", bucket }, sent);
          duration.observe({ method, bucket }, (performance.now() - started) / 1000);
          size.observe({ method, bucket }, sent);
        }),
      };
    },
    presignedUse(bucket, allowed) {
      (allowed ? hits : rejected).inc({ bucket });
    },
  };
}
