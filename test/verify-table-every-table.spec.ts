import { Controller, Get, Injectable, Param } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  DynamoCached,
  DynamoCacheError,
  DynamoCacheModule,
  DynamoCacheService,
  type DynamoCacheModuleOptions,
} from '../lib/index.js';
import { countCalls, useTestDynamo } from './support/dynamo-server.js';

/*
 * `verifyTable` checks every table the cache will use that is known at bootstrap: the module's,
 * and those named by `@DynamoCached({ table })` on provider methods and on routes.
 */

const MISSING_METHOD_TABLE = `no-such-method-table-${process.pid}`;
const MISSING_ROUTE_TABLE = `no-such-route-table-${process.pid}`;

@Injectable()
class OnMissingTable {
  @DynamoCached({ ttl: 60, table: MISSING_METHOD_TABLE })
  async get(id: string): Promise<string> {
    return id;
  }
}

@Controller('rates')
class RatesOnMissingTable {
  @Get(':pair')
  @DynamoCached({ ttl: 60, table: MISSING_ROUTE_TABLE })
  rate(@Param('pair') pair: string): string {
    return pair;
  }
}

describe('verifyTable: every table known at bootstrap', () => {
  const fx = useTestDynamo();

  async function boot(
    options: DynamoCacheModuleOptions,
    providers: unknown[],
    controllers: unknown[] = [],
  ): Promise<unknown> {
    return Test.createTestingModule({
      imports: [DynamoCacheModule.forRoot(options)],
      providers: providers as never[],
      controllers: controllers as never[],
    })
      .compile()
      .then(async (moduleRef) => {
        moduleRef.useLogger(false);
        fx.apps.push(moduleRef);
        await moduleRef.init();
        return moduleRef;
      })
      .catch((err: unknown) => err);
  }

  it('a @DynamoCached({ table }) provider method on a missing table fails bootstrap naming that table', async () => {
    const table = await fx.dynamo.table('verify-every');
    const err = await boot({ table, client: fx.dynamo.client(), verifyTable: true }, [
      OnMissingTable,
    ]);
    expect(err).toBeInstanceOf(DynamoCacheError);
    expect((err as DynamoCacheError).operation).toBe('DescribeTable');
    expect((err as Error).message).toContain(`"${MISSING_METHOD_TABLE}"`);
    expect((err as Error).message).toContain('does not exist');
  });

  it('a @DynamoCached({ table }) route on a missing table fails bootstrap naming that table', async () => {
    const table = await fx.dynamo.table('verify-every');
    const err = await boot(
      { table, client: fx.dynamo.client(), verifyTable: true },
      [],
      [RatesOnMissingTable],
    );
    expect(err).toBeInstanceOf(DynamoCacheError);
    expect((err as Error).message).toContain(`"${MISSING_ROUTE_TABLE}"`);
  });

  it('tables that all exist: one DescribeTable each, and the cache works on both', async () => {
    const table = await fx.dynamo.table('verify-every');
    const other = await fx.dynamo.table('verify-other');
    @Injectable()
    class OnOtherTable {
      @DynamoCached({ ttl: 60, table: other })
      async get(id: string): Promise<string> {
        return `other ${id}`;
      }
    }
    const client = fx.dynamo.client();
    const calls = countCalls(client);
    const moduleRef = (await boot({ table, client, verifyTable: true }, [OnOtherTable])) as {
      get<T>(token: new (...args: never[]) => T): T;
    };
    expect(moduleRef).not.toBeInstanceOf(Error);
    expect(calls.counts).toEqual({ DescribeTable: 2 });
    expect(await moduleRef.get(OnOtherTable).get('a')).toBe('other a');
    expect(await moduleRef.get(DynamoCacheService).wrap('ns', ['a'], () => 1)).toBe(1);
  });
});
