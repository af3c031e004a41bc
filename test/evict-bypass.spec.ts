import { Injectable } from '@nestjs/common';
import {
  DynamoCached,
  DynamoCacheError,
  DynamoCacheEvict,
  DynamoCachePut,
  DynamoCacheService,
} from '../lib/index.js';
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

  /** Tags from a lookup that found nothing: the function returns undefined. */
  @DynamoCacheEvict({ tags: (_r: unknown, _id: string, tagOf?: string[]) => tagOf as never })
  async touch(_id: string, _tagOf?: string[]): Promise<string> {
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
    ['tags function that returns undefined', (a) => a.touch('1', undefined)],
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

describe('@DynamoCacheEvict whose tags function returns neither a tag nor an array of tags', () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo.close();
  });

  @Injectable()
  class Items {
    runs = 0;
    @DynamoCached({ ttl: 600, tags: (_v: unknown, id: string) => [`item:${id}`] })
    async find(_id: string): Promise<number> {
      return ++this.runs;
    }

    @DynamoCacheEvict({ tags: (_r: unknown, _id: string, tagOf?: unknown) => tagOf as never })
    async touch(id: string, _tagOf?: unknown): Promise<string> {
      return `touched ${id}`;
    }
  }

  it.each<[string, unknown]>([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
  ])(
    "returning %s, under onError 'throw': the call rejects with a config DynamoCacheError naming the problem, with the method's result",
    async (_n, returned) => {
      const table = await dynamo.table();
      const app = await bootCache({ table, clientConfig: dynamo.clientConfig, onError: 'throw' }, [
        Items,
      ]);
      const items = app.get(Items);
      await items.find('x');
      const err = await items.touch('x', returned).then(
        () => undefined,
        (e: unknown) => e,
      );
      await app.get(DynamoCacheService).settle();
      await app.close();
      expect(err).toBeInstanceOf(DynamoCacheError);
      expect((err as DynamoCacheError).operation).toBe('config');
      expect((err as DynamoCacheError).result).toBe('touched x');
      expect((err as Error).message).toMatch(
        /^@DynamoCacheEvict on Items\.touch: the "tags" function must return a tag or an array of tags, got /,
      );
    },
  );

  it("under onError 'bypass': the call resolves with its result, and the failure is logged", async () => {
    const table = await dynamo.table();
    const warnings: string[] = [];
    const logger = {
      log: () => undefined,
      error: (m: unknown) => warnings.push(String(m)),
      warn: (m: unknown) => warnings.push(String(m)),
    };
    const app = await bootCache(
      { table, clientConfig: dynamo.clientConfig, onError: 'bypass' },
      [Items],
      logger,
    );
    const out = await app.get(Items).touch('x', undefined);
    await app.get(DynamoCacheService).settle();
    await app.close();
    expect(out).toBe('touched x');
    expect(warnings).toEqual([expect.stringContaining('the "tags" function must return a tag')]);
  });

  it('returning a tag, or an array of tags, evicts the entries carrying them', async () => {
    const table = await dynamo.table();
    const app = await bootCache({ table, clientConfig: dynamo.clientConfig, onError: 'throw' }, [
      Items,
    ]);
    const items = app.get(Items);
    expect(await items.find('x')).toBe(1);
    await items.touch('x', 'item:x');
    expect(await items.find('x')).toBe(2);
    await items.touch('x', ['item:x']);
    expect(await items.find('x')).toBe(3);
    await app.get(DynamoCacheService).settle();
    await app.close();
  });
});
