import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import {
  Controller,
  Get,
  Injectable,
  Module,
  Param,
  type INestApplicationContext,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import {
  DynamoCached,
  DynamoCacheModule,
  v8Serializer,
  type DynamoCacheModuleOptions,
} from '../../lib/index.js';
import { scanTable, sleep } from '../support/apps.js';
import { startDynamo, testServerKind, type TestDynamo } from '../support/dynamo-server.js';
import { until } from '../support/waits.js';

interface Report {
  id: number;
  total: number;
}

const reportOf = (id: number): Report => ({ id, total: id * 7 + 1 });

/**
 * Computations the test starts together: each waits for `release()`, then takes 200–500 ms (by
 * default; see `duration`), or never settles (the ids in `hang`).
 */
@Injectable()
class Work {
  started = 0;
  finished = 0;
  readonly hang = new Set<number>();
  duration = (id: number): number => 200 + ((id * 37) % 300);
  release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));

  async run(id: number): Promise<Report> {
    this.started++;
    if (this.hang.has(id)) return new Promise<Report>(() => undefined);
    await this.gate;
    await sleep(this.duration(id));
    this.finished++;
    return reportOf(id);
  }
}

@Injectable()
class ReportService {
  constructor(private readonly work: Work) {}

  @DynamoCached(600)
  async report(id: number): Promise<Report> {
    return this.work.run(id);
  }
}

@Controller('reports')
class ReportsController {
  constructor(private readonly work: Work) {}

  @Get(':id')
  @DynamoCached(600)
  async report(@Param('id') id: string): Promise<Report> {
    return this.work.run(Number(id));
  }
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, i) => from + i);

describe(`shutdown with computations in flight (${testServerKind()})`, () => {
  let dynamo: TestDynamo;
  const open: { close(): Promise<unknown> }[] = [];

  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterEach(async () => {
    // The apps a test did not close (it failed first).
    await Promise.all(open.splice(0).map((a) => a.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await dynamo.close();
  });

  /** `app` has been closed by the test: afterEach must not run its shutdown again. */
  function closed(app: { close(): Promise<unknown> }): void {
    open.splice(open.indexOf(app), 1);
  }

  /** The module creates (and destroys) its own client: only connection settings are given. */
  function cacheModule(table: string, options: Partial<DynamoCacheModuleOptions> = {}) {
    return DynamoCacheModule.forRoot({ table, clientConfig: dynamo.clientConfig, ...options });
  }

  async function context(
    table: string,
    options: Partial<DynamoCacheModuleOptions> = {},
  ): Promise<INestApplicationContext> {
    @Module({ imports: [cacheModule(table, options)], providers: [Work, ReportService] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const work = app.get(Work);
    open.push(app, { close: async () => work.release() });
    return app;
  }

  /** The table's items, read with a client of the test's own, as id → stored report. */
  async function stored(table: string): Promise<Map<number, Report>> {
    const client = dynamo.client();
    const items = await scanTable(client, table);
    const out = new Map<number, Report>();
    for (const item of items as Record<string, AttributeValue>[]) {
      expect(item.v?.B).toBeDefined();
      const value = v8Serializer.deserialize(item.v!.B!) as Report | { body: Report };
      // A route entry stores the whole response; its body is the report.
      const report = 'body' in value ? value.body : value;
      out.set(report.id, report);
    }
    expect(out.size).toBe(items.length);
    return out;
  }

  function expectAllStored(items: Map<number, Report>, ids: number[]): void {
    expect([...items.keys()].sort((a, b) => a - b)).toEqual(ids);
    for (const id of ids) expect(items.get(id)).toEqual(reportOf(id));
  }

  it('close() with 100 computations in flight: every caller gets its result, all 100 items are written', async () => {
    const table = await dynamo.table('inflight');
    const app = await context(table);
    const work = app.get(Work);
    const reports = app.get(ReportService);
    const ids = range(0, 100);
    const results = Promise.allSettled(ids.map((id) => reports.report(id)));
    await until(() => work.started === 100, 'all 100 computations to start', 10_000);
    work.release();
    const closing = app.close();
    // Every computation is still running when close() begins.
    expect(work.finished).toBe(0);
    await closing;
    closed(app);

    const settled = await results;
    expect(settled.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(settled.map((r) => (r.status === 'fulfilled' ? r.value : r.reason))).toEqual(
      ids.map(reportOf),
    );
    expectAllStored(await stored(table), ids);
  });

  it('close() right after the calls, before any computation has started: the same', async () => {
    const table = await dynamo.table('inflight');
    const app = await context(table);
    const work = app.get(Work);
    const reports = app.get(ReportService);
    work.release();
    const ids = range(0, 100);
    const results = Promise.allSettled(ids.map((id) => reports.report(id)));
    expect(work.started).toBe(0); // each call is still reading DynamoDB
    await app.close();
    closed(app);

    const settled = await results;
    expect(settled.filter((r) => r.status === 'rejected')).toEqual([]);
    expectAllStored(await stored(table), ids);
  });

  it('close() is bounded by computeTimeout when a computation never settles; the others are written', async () => {
    const table = await dynamo.table('inflight');
    const app = await context(table, { computeTimeout: 300 });
    const work = app.get(Work);
    const reports = app.get(ReportService);
    work.hang.add(0);
    // The others must finish within computeTimeout (from their call), or they are not cached.
    work.duration = (id) => 20 + ((id * 37) % 80);
    const hung = reports.report(0);
    const ids = range(1, 21);
    const results = Promise.allSettled(ids.map((id) => reports.report(id)));
    await until(() => work.started === 21, 'all 21 computations to start', 10_000);
    work.release();
    expect(work.finished).toBe(0);

    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      app.close().then(() => 'closed'),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('still closing after 5 s'), 5000);
      }),
    ]);
    clearTimeout(timer);
    expect(outcome).toBe('closed');
    closed(app);

    const settled = await results;
    expect(settled.filter((r) => r.status === 'rejected')).toEqual([]);
    expectAllStored(await stored(table), ids);
    let hungSettled = false;
    void hung.finally(() => (hungSettled = true));
    await sleep(0);
    expect(hungSettled).toBe(false);
  });

  // The documented bound (module option computeTimeout: "Shutdown waits at most this long for
  // computations in flight"; l2Timeout "also bounds how long shutdown waits for writes"): one
  // computeTimeout + l2Timeout for the whole close(), here 300 + 1000 ms, given 700 ms to spare.
  it('close() waits for a computation that never settles at most computeTimeout + l2Timeout in all', async () => {
    const table = await dynamo.table('inflight');
    const app = await context(table, { computeTimeout: 300, l2Timeout: 1000 });
    const work = app.get(Work);
    work.hang.add(0);
    void app.get(ReportService).report(0);
    await until(() => work.started === 1, 'the computation to start', 10_000);

    const started = Date.now();
    await app.close();
    closed(app);
    expect(Date.now() - started).toBeLessThan(300 + 1000 + 700);
  });

  it('an HTTP application (Express): close() with cached routes in flight answers every request and writes every item', async () => {
    const table = await dynamo.table('inflight');
    @Module({ imports: [cacheModule(table)], providers: [Work], controllers: [ReportsController] })
    class HttpModule {}
    // Connections still open when the HTTP server closes are cut: a response not yet sent by then
    // is lost, so the cache must have let the computations finish before (the default would wait
    // for them itself).
    const app = await NestFactory.create(HttpModule, {
      logger: false,
      forceCloseConnections: true,
    });
    open.push(app, { close: async () => app.get(Work).release() });
    await app.init();
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    const work = app.get(Work);

    const ids = range(0, 50);
    const responses = Promise.allSettled(
      ids.map(async (id) => {
        const res = await fetch(`http://127.0.0.1:${port}/reports/${id}`);
        return { status: res.status, body: (await res.json()) as unknown };
      }),
    );
    await until(() => work.started === 50, 'all 50 requests to reach their handler', 10_000);
    work.release();
    const closing = app.close();
    expect(work.finished).toBe(0);
    await closing;
    closed(app);

    const settled = await responses;
    expect(settled.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(settled.map((r) => (r.status === 'fulfilled' ? r.value : r.reason))).toEqual(
      ids.map((id) => ({ status: 200, body: reportOf(id) })),
    );
    expectAllStored(await stored(table), ids);
  });
});
