import { Controller, Get, Injectable, Module, Param, type Type } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { DynamoCached, DynamoCacheError, DynamoCacheModule } from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { testServerKind, useTestDynamo } from './support/dynamo-server.js';

interface Reports {
  calls: number;
  summary(id: string): Promise<string>;
}

/** A `ReportsService` of its own each call: same class name, same method name, another class. */
function makeReportsService(label: string, namespace?: string): Type<Reports> {
  @Injectable()
  class ReportsService implements Reports {
    calls = 0;

    @DynamoCached(namespace === undefined ? 600 : { ttl: 600, namespace })
    async summary(id: string): Promise<string> {
      this.calls++;
      return `${label}:${id}`;
    }
  }
  return ReportsService;
}

/** A `ReportsController` of its own each call, with a cached route. */
function makeReportsController(path: string, namespace?: string): Type {
  @Controller(path)
  class ReportsController {
    @Get(':id')
    @DynamoCached(namespace === undefined ? 60 : { ttl: 60, namespace })
    summary(@Param('id') id: string): string {
      return `${path}:${id}`;
    }
  }
  return ReportsController;
}

/** The module named `name` providing (and exporting) `providers`, with `controllers`. */
function makeModule(name: string, providers: Type[], controllers: Type[] = []): Type {
  const cls = { [name]: class {} }[name]!;
  Module({ providers, exports: providers, controllers })(cls);
  return cls;
}

describe(`namespaces of classes that share a name (${testServerKind()})`, () => {
  const fx = useTestDynamo();

  async function compile(table: string, imports: Type[]): Promise<TestingModule> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client(), ttl: 600 }),
        ...imports,
      ],
    }).compile();
    moduleRef.useLogger(false);
    fx.apps.push(moduleRef);
    return moduleRef;
  }

  /** What `init()` rejects with (the test fails if it resolves). */
  async function initError(moduleRef: TestingModule): Promise<DynamoCacheError> {
    let error: unknown;
    try {
      await moduleRef.init();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DynamoCacheError);
    return error as DynamoCacheError;
  }

  it('two provider classes named ReportsService in two modules: bootstrap fails naming both', async () => {
    const Billing = makeReportsService('billing');
    const Audit = makeReportsService('audit');
    expect(Billing.name).toBe('ReportsService');
    expect(Audit.name).toBe('ReportsService');
    const moduleRef = await compile(await fx.dynamo.table(), [
      makeModule('BillingModule', [Billing]),
      makeModule('AuditModule', [Audit]),
    ]);
    const error = await initError(moduleRef);
    expect(error.operation).toBe('config');
    expect(error.message).toContain('ReportsService.summary');
    expect(error.message).toContain('ReportsService (in BillingModule)');
    expect(error.message).toContain('ReportsService (in AuditModule)');
    expect(error.message).toContain('namespace');
  });

  it('with its own namespace on one of them, bootstrap succeeds and their entries stay apart', async () => {
    const table = await fx.dynamo.table();
    const Billing = makeReportsService('billing');
    const Audit = makeReportsService('audit', 'audit.reports');
    const boot = async () => {
      const moduleRef = await compile(table, [
        makeModule('BillingModule', [Billing]),
        makeModule('AuditModule', [Audit]),
      ]);
      await moduleRef.init();
      return { billing: moduleRef.get(Billing), audit: moduleRef.get(Audit) };
    };

    const first = await boot();
    expect(await first.billing.summary('7')).toBe('billing:7');
    expect(await first.audit.summary('7')).toBe('audit:7');
    expect([first.billing.calls, first.audit.calls]).toEqual([1, 1]);
    expect(await scanTable(fx.admin, table)).toHaveLength(2);

    // From L2 in a fresh application: each reads its own item.
    const second = await boot();
    expect(await second.audit.summary('7')).toBe('audit:7');
    expect(await second.billing.summary('7')).toBe('billing:7');
    expect([second.billing.calls, second.audit.calls]).toEqual([0, 0]);
  });

  it('the same class provided by two modules (two instances) shares its namespace without error', async () => {
    const Shared = makeReportsService('shared');
    const First = makeModule('FirstModule', [Shared]);
    const Second = makeModule('SecondModule', [Shared]);
    const moduleRef = await compile(await fx.dynamo.table(), [First, Second]);
    await moduleRef.init();
    const one = moduleRef.select(First).get(Shared, { strict: true });
    const two = moduleRef.select(Second).get(Shared, { strict: true });
    expect(one).not.toBe(two);
    expect(await one.summary('1')).toBe('shared:1');
    expect(await two.summary('1')).toBe('shared:1');
    expect(one.calls + two.calls).toBe(1);
  });

  it('two controllers named ReportsController with cached routes: bootstrap fails naming both', async () => {
    const moduleRef = await compile(await fx.dynamo.table(), [
      makeModule('BillingModule', [], [makeReportsController('billing')]),
      makeModule('AuditModule', [], [makeReportsController('audit')]),
    ]);
    const error = await initError(moduleRef);
    expect(error.operation).toBe('config');
    expect(error.message).toContain('ReportsController.summary');
    expect(error.message).toContain('ReportsController (in BillingModule)');
    expect(error.message).toContain('ReportsController (in AuditModule)');
    expect(error.message).toContain('namespace');
  });

  it('two controllers named ReportsController, one with its own namespace: bootstrap succeeds', async () => {
    const moduleRef = await compile(await fx.dynamo.table(), [
      makeModule('BillingModule', [], [makeReportsController('billing')]),
      makeModule('AuditModule', [], [makeReportsController('audit', 'audit.reports')]),
    ]);
    await expect(moduleRef.init()).resolves.toBe(moduleRef);
  });
});
