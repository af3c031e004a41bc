import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { DynamoCached, DynamoCachePut, DynamoCacheService } from '../lib/index.js';
import { bootCache, settleAll } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * @DynamoCachePut of a result that the target namespace's own ttl/tags function cannot give a
 * life to (a tags function that throws for it, a ttl function returning 0): the computed path
 * "ends" the older value (README: Conditional caching), and `set` of a value that cannot be stored
 * "leaves a tombstone, so no other process reads the older value". The put path leaves the OLD
 * value in both layers, served by every instance after the mutation succeeded.
 */

interface User {
  id: string;
  name: string;
  org: { id: string } | null;
}

class UserDb {
  users: Record<string, User> = { u1: { id: 'u1', name: 'Ann', org: { id: 'o1' } } };
}

@Injectable()
class Users {
  finds = 0;
  constructor(private readonly db: UserDb) {}

  @DynamoCached({ ttl: 600, tags: (u: User) => [`org:${u.org!.id}`] })
  async find(id: string): Promise<User> {
    this.finds++;
    return structuredClone(this.db.users[id]!);
  }

  /** A deleted account is not cached (README: a ttl function returning 0 leaves it uncached). */
  @DynamoCached({ ttl: (u: User & { deleted?: boolean }) => (u.deleted ? 0 : 600) })
  async account(id: string): Promise<User & { deleted?: boolean }> {
    this.finds++;
    return structuredClone(this.db.users[id]!);
  }

  @DynamoCachePut({ namespace: 'Users.account', args: (id: string) => [id] })
  async deleteAccount(id: string): Promise<User & { deleted?: boolean }> {
    const user = { ...this.db.users[id]!, deleted: true };
    this.db.users[id] = user;
    return structuredClone(user);
  }

  /** The user leaves their organisation: the saved user becomes the cached one. */
  @DynamoCachePut({ namespace: 'Users.find', args: (id: string) => [id] })
  async leaveOrg(id: string): Promise<User> {
    const user = { ...this.db.users[id]!, org: null };
    this.db.users[id] = user;
    return structuredClone(user);
  }
}

describe('@DynamoCachePut of a value its namespace cannot give a life to', () => {
  const fx = useTestDynamo();

  async function app(table: string, db: UserDb) {
    const moduleRef = await bootCache(
      { table, clientConfig: fx.dynamo.clientConfig, l1MaxAge: 1 },
      [{ provide: UserDb, useValue: db }, Users],
    );
    fx.apps.push(moduleRef);
    return { users: moduleRef.get(Users), cache: moduleRef.get(DynamoCacheService) };
  }

  it('no instance serves the pre-mutation value after leaveOrg() resolved', async () => {
    const table = await fx.dynamo.table();
    const db = new UserDb();
    const a = await app(table, db);
    const b = await app(table, db);
    expect((await a.users.find('u1')).org).toEqual({ id: 'o1' });
    expect((await b.users.find('u1')).org).toEqual({ id: 'o1' }); // B: from L2

    const saved = await a.users.leaveOrg('u1'); // resolves (onError bypass)
    expect(saved.org).toBeNull();
    await settleAll(fx.apps);
    await new Promise((r) => setTimeout(r, 1200)); // past B's l1MaxAge

    // What the database holds now: org null. What the cache answers:
    const inA = await a.users.find('u1');
    const inB = await b.users.find('u1');
    const c = await app(table, db); // a fresh instance (a restart)
    const inC = await c.users.find('u1');
    expect({ A: inA.org, B: inB.org, C: inC.org }).toEqual({ A: null, B: null, C: null });
  });

  it('a put whose result the ttl function leaves uncached (0) still ends the older entry', async () => {
    const table = await fx.dynamo.table();
    const db = new UserDb();
    const a = await app(table, db);
    const b = await app(table, db);
    expect((await a.users.account('u1')).deleted).toBeUndefined();
    expect((await b.users.account('u1')).deleted).toBeUndefined();
    expect((await a.users.deleteAccount('u1')).deleted).toBe(true);
    await settleAll(fx.apps);
    await new Promise((r) => setTimeout(r, 1200));
    const c = await app(table, db);
    const got = {
      A: (await a.users.account('u1')).deleted,
      B: (await b.users.account('u1')).deleted,
      C: (await c.users.account('u1')).deleted,
    };
    expect(got).toEqual({ A: true, B: true, C: true });
  });
});
