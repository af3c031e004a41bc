import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Context, GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { settleAll } from './support/apps.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * A resolver behind a proxy renders the original host (X-Forwarded-Host), as a route
 * may; routes key it ("Tenants served by host never see each other's responses"), resolvers?
 */

let runs = 0;

@Resolver()
class OriginResolver {
  @Query(() => String)
  @DynamoCached(60)
  origin(@Context() ctx: { req: { headers: Record<string, string | undefined> } }): string {
    runs++;
    // What a tenant-by-host app behind a proxy reads (as Express's req.hostname with trust proxy).
    return `tenant:${ctx.req.headers['x-forwarded-host'] ?? ctx.req.headers.host}`;
  }
}

describe('GraphQL resolver key and proxy headers (two applications, one table)', () => {
  const fx = useTestDynamo();

  async function boot(table: string) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() }),
        GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
      ],
      providers: [OriginResolver],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.init();
    return async (forwardedHost: string) => {
      const res = await request(app.getHttpServer())
        .post('/graphql')
        .set({ host: 'api.example', 'x-forwarded-host': forwardedHost })
        .send({ query: '{ origin }' })
        .expect(200);
      return (res.body as { data: { origin: string } }).data.origin;
    };
  }

  it("a tenant behind the proxy never gets another tenant's resolver result", async () => {
    const table = await fx.dynamo.table();
    const a = await boot(table);
    const b = await boot(table);
    expect(await a('acme.example')).toBe('tenant:acme.example');
    await settleAll(fx.apps);
    expect(await b('globex.example')).toBe('tenant:globex.example');
    expect(await a('globex.example')).toBe('tenant:globex.example');
    expect(runs).toBe(2);
  });
});
