/** Prometheus metrics (prom-client): requests and latency by route and status, batches, queue, index database calls. */
import client from 'prom-client';
import type { NextFunction, Request, Response } from 'express';

export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const requests = new client.Counter({
    name: 'sslkit_http_requests_total',
    help: 'HTTP requests',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: 'sslkit_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const batchSize = new client.Histogram({
    name: 'sslkit_batch_size',
    help: 'images per model run',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  });
  const queueDepth = new client.Gauge({ name: 'sslkit_queue_depth', help: 'images waiting for the model', registers: [registry] });
  const provider = new client.Gauge({
    name: 'sslkit_execution_provider',
    help: 'execution provider in use (1)',
    labelNames: ['provider'],
    registers: [registry],
  });
  const indexSize = new client.Gauge({ name: 'sslkit_index_items', help: 'items in the index', registers: [registry] });
  const indexQuery = new client.Histogram({
    name: 'sslkit_index_query_seconds',
    help: 'index database calls (PostgreSQL store) by operation',
    labelNames: ['op'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  const indexErrors = new client.Counter({
    name: 'sslkit_index_query_errors_total',
    help: 'failed index database calls by operation and error code',
    labelNames: ['op', 'code'],
    registers: [registry],
  });
  const observeIndexQuery = (op: string, seconds: number, error?: string) => {
    indexQuery.observe({ op }, seconds);
    if (error) indexErrors.inc({ op, code: error });
  };
  const middleware = (req: Request, res: Response, next: NextFunction) => {
    const end = latency.startTimer();
    res.on('finish', () => {
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      const labels = { route, method: req.method, status: String(res.statusCode) };
      requests.inc(labels);
      end(labels);
    });
    next();
  };
  return { registry, batchSize, queueDepth, provider, indexSize, observeIndexQuery, middleware };
}
export type Metrics = ReturnType<typeof createMetrics>;
