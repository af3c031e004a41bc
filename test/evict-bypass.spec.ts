import { Injectable } from '@nestjs/common';
import { DynamoCacheEvict, DynamoCachePut, DynamoCacheService } from '../lib/index.js';
import { bootCache } from './support/apps.js';
import { startDynamo, type TestDynamo } from './support/dynamo-server.js';

class Dto {
  constructor(
    readonly id: string,
    readonly name: string,
  ) {}
}

/** A mutation service: each method "writes the database" (count) then the decorator evicts. */
@Injectable()
class Admin {
  writes = 0;

  /** Tags built from request data: a long id gives a tag over 1,024 bytes. */
  @DynamoCacheEvict({ tags: (_r: unknown, id: string) => [`user:${id}`] })
  async rename(_id: string, _name: string): Promise<string> {
    this.writes++;
    return 'ok';
  }

  /** Default args: the method's own; one is not key material (a function). */
  @DynamoCacheEvict({ namespace: 'Users.find' })
  async withCallback(_id: string, _done: () => void): Promise<string> {
    this.writes++;
    return 'ok';
  }

  /** A tags function that throws on an odd input. */
  @DynamoCacheEvict({ tags: (_r: unknown, dto: Dto) => [`user:${dto.id.toLowerCase()}`] })
  async save(_dto: Dto | null): Promise<string> {
    this.writes++;
    return 'ok';
  }

  /** Put keyed from request data. */
  @DynamoCachePut({ namespace: 'Users.find', args: (id: string) => [id] })
  async put(_id: string): Promise<string> {
    this.writes++;
    return 'ok';
  }
}

describe("@DynamoCacheEvict under onError 'bypass' when the eviction itself cannot be made", () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  const cases: [string, (a: Admin) => Promise<unknown>][] = [
    ['tag over 1,024 bytes from the arguments', (a) => a.rename('x'.repeat(2000), 'n')],
    ['default args holding a function', (a) => a.withCallback('1', () => undefined)],
    ['tags function that throws', (a) => a.save(null)],
  ];
  it.each(cases)(
    '%s: the mutation ran, and the call resolves with its result (README: logged, resolves)',
    async (_n, call) => {
      const table = await dynamo.table();
      const app = await bootCache({ table, clientConfig: dynamo.clientConfig, onError: 'bypass' }, [
        Admin,
      ]);
      const admin = app.get(Admin);
      const out = await call(admin).then(
        (v) => ({ value: v }),
        (e: Error & { operation?: string; result?: unknown }) => ({
          error: `${e.name} (${e.operation}) ${e.message.slice(0, 140)}`,
          result: e.result,
        }),
      );
      await app.get(DynamoCacheService).settle();
      await app.close();
      expect(admin.writes).toBe(1);
      expect(out).toEqual({ value: 'ok' });
    },
  );
});
