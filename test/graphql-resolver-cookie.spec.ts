import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import type { INestApplication } from '@nestjs/common';
import { Context, GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * A resolver that sets a cookie on the HTTP response (a CSRF token, a session it starts) and
 * returns what the cookie holds: its result is that client's, as a route response with
 * Set-Cookie is, and must reach no other client, on this instance or another.
 */

let issued = 0;

@Resolver()
class CsrfResolver {
  @Query(() => String)
  @DynamoCached(60)
  async csrfToken(
    @Context() ctx: { req: { res: { cookie(name: string, value: string): void } } },
  ): Promise<string> {
    const token = `t${++issued}`;
    ctx.req.res.cookie('csrf', token);
    // Slow enough for concurrent requests to meet on one computation.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return token;
  }
}

@Resolver()
class VisitorPicksResolver {
  /** Picks for the visitor it gives an id (a cookie), one failing: a partial result. */
  @Query(() => [String], { nullable: 'items' })
  @DynamoCached(60)
  async visitorPicks(
    @Context() ctx: { req: { res: { cookie(name: string, value: string): void } } },
  ): Promise<(string | Error)[]> {
    const id = `v${++issued}`;
    ctx.req.res.cookie('vid', id);
    await new Promise((resolve) => setTimeout(resolve, 50));
    return [`picks-for-${id}`, new Error('one pick failed')];
  }
}

describe('GraphQL: a resolver that sets a cookie (two instances on one table)', () => {
  const fx = useTestDynamo();

  async function gqlApp(table: string): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() }),
        GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
      ],
      providers: [CsrfResolver, VisitorPicksResolver],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.init();
    return app;
  }

  /** The token in the body and the one in the cookie set with it. */
  async function token(app: INestApplication): Promise<{ body: unknown; cookie: unknown }> {
    const res = await request(app.getHttpServer())
      .post('/graphql')
      .set({ host: 'api.example' })
      .send({ query: '{ csrfToken }' })
      .expect(200);
    const cookies = (res.headers['set-cookie'] ?? []) as unknown as string[];
    return {
      body: (res.body as { data?: { csrfToken?: string } }).data?.csrfToken,
      cookie: /^csrf=([^;]*)/.exec(cookies.join('\n'))?.[1],
    };
  }

  it("each client gets its own token with its cookie, never another's, and nothing is stored", async () => {
    issued = 0;
    const table = await fx.dynamo.table();
    const a = await gqlApp(table);
    const b = await gqlApp(table);
    const first = await token(a);
    expect(first).toEqual({ body: 't1', cookie: 't1' });
    await a.get(DynamoCacheService).settle();
    // Another client, on A and on B.
    expect(await token(a)).toEqual({ body: 't2', cookie: 't2' });
    expect(await token(b)).toEqual({ body: 't3', cookie: 't3' });
    // Concurrent clients: each its own.
    const both = await Promise.all([token(a), token(a)]);
    for (const answer of both) expect(answer.body).toBe(answer.cookie);
    expect(new Set(both.map((answer) => answer.body)).size).toBe(2);
    await a.get(DynamoCacheService).settle();
    expect(await scanTable(fx.admin, table)).toEqual([]);
  });

  it('a partial result made with a cookie goes to its client only: a waiter makes its own', async () => {
    issued = 0;
    const table = await fx.dynamo.table();
    const a = await gqlApp(table);
    const picks = async () => {
      const res = await request(a.getHttpServer())
        .post('/graphql')
        .set({ host: 'api.example' })
        .send({ query: '{ visitorPicks }' })
        .expect(200);
      const cookies = (res.headers['set-cookie'] ?? []) as unknown as string[];
      return {
        body: (res.body as { data?: { visitorPicks?: unknown[] } }).data?.visitorPicks?.[0],
        cookie: /^vid=([^;]*)/.exec(cookies.join('\n'))?.[1],
      };
    };
    const both = await Promise.all([picks(), picks()]);
    for (const answer of both) expect(answer.body).toBe(`picks-for-${answer.cookie}`);
    await a.get(DynamoCacheService).settle();
    expect(await scanTable(fx.admin, table)).toEqual([]);
  });
});
