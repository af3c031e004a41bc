import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import type { INestApplication } from '@nestjs/common';
import { Context, Field, GraphQLModule, ObjectType, Query, Resolver } from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import { createClient, type Client } from 'graphql-ws';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { scanTable } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * Queries over graphql-ws (which carries queries as well as subscriptions). The connection
 * authenticates with its connectionParams, which no request header shows; Nest's Apollo driver
 * puts graphql-ws's own context object under `req` of the GraphQL context: it has no headers.
 */

@ObjectType()
class WsViewer {
  @Field() name!: string;
}

@Resolver(() => WsViewer)
class WsViewerResolver {
  runs = 0;

  @Query(() => WsViewer)
  @DynamoCached(60)
  viewer(@Context() ctx: { user?: string }): WsViewer {
    this.runs++;
    return Object.assign(new WsViewer(), { name: ctx.user ?? 'anonymous' });
  }
}

describe('GraphQL over WebSocket (graphql-ws): the connection authenticates with connectionParams', () => {
  const fx = useTestDynamo();
  const clients: Client[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.dispose();
  });

  /** The context the application builds: by default Nest's (graphql-ws's context as `req`). */
  type ContextArg = {
    req?: { headers: Record<string, string | undefined> };
    connectionParams?: { token?: string };
    extra?: { request: unknown };
  };
  const userOf = (arg: ContextArg): string | undefined =>
    arg.connectionParams?.token ?? arg.req?.headers.authorization;

  async function wsApp(
    table: string,
    context: (arg: ContextArg) => object = (arg) => ({ user: userOf(arg) }),
  ): Promise<{ app: INestApplication; url: string }> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() }),
        GraphQLModule.forRoot<ApolloDriverConfig>({
          driver: ApolloDriver,
          autoSchemaFile: true,
          subscriptions: { 'graphql-ws': true },
          // HTTP: the user from Authorization; WebSocket: from the connection's params.
          context,
        }),
      ],
      providers: [WsViewerResolver],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    return { app, url: `ws://127.0.0.1:${port}/graphql` };
  }

  function query(url: string, token: string): Promise<unknown> {
    const client = createClient({ url, webSocketImpl: WebSocket, connectionParams: { token } });
    clients.push(client);
    return new Promise((resolve, reject) => {
      let result: unknown;
      client.subscribe(
        { query: '{ viewer { name } }' },
        { next: (r) => (result = r), error: reject, complete: () => resolve(result) },
      );
    });
  }

  /** Alice's and Bob's connections each get their own viewer, each runs the resolver, nothing is stored. */
  async function expectUnshared(app: INestApplication, url: string, table: string): Promise<void> {
    expect(await query(url, 'alice')).toEqual({ data: { viewer: { name: 'alice' } } });
    expect(await query(url, 'bob')).toEqual({ data: { viewer: { name: 'bob' } } });
    expect(app.get(WsViewerResolver).runs).toBe(2);
    await app.get(DynamoCacheService).settle();
    expect(await scanTable(fx.admin, table)).toEqual([]);
  }

  it("bob's connection never gets alice's viewer, and nothing is stored", async () => {
    const table = await fx.dynamo.table();
    const { app, url } = await wsApp(table);
    await expectUnshared(app, url, table);
  });

  it('the same when the context gives the upgrade request as req (its headers carry no credential)', async () => {
    const table = await fx.dynamo.table();
    const { app, url } = await wsApp(table, (arg) => ({
      req: arg.req ?? arg.extra?.request,
      user: userOf(arg),
    }));
    await expectUnshared(app, url, table);
  });

  it("the same when the context makes a req of the connection's params (for guards reading req.headers)", async () => {
    const table = await fx.dynamo.table();
    const { app, url } = await wsApp(table, (arg) => ({
      req: arg.req ?? { headers: arg.connectionParams },
      user: userOf(arg),
    }));
    await expectUnshared(app, url, table);
  });
});
