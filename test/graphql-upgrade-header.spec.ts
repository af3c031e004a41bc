import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { DynamoCached, DynamoCacheModule } from '../lib/index.js';
import { useTestDynamo } from './support/dynamo-server.js';

/*
 * An HTTP request that offers another protocol (curl --http2 on an http:// URL sends
 * `Upgrade: h2c`) is answered as any other when the server takes no such upgrade: it is no
 * WebSocket, and its result may be shared as any.
 */

let runs = 0;

@Resolver()
class UpgradeOfferResolver {
  @Query(() => String)
  @DynamoCached(60)
  greeting(): string {
    runs++;
    return 'hello';
  }
}

describe('GraphQL over HTTP: a request offering an upgrade to h2c', () => {
  const fx = useTestDynamo();

  it('is cached as any HTTP request', async () => {
    const table = await fx.dynamo.table();
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() }),
        GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
      ],
      providers: [UpgradeOfferResolver],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.init();
    for (let i = 0; i < 2; i++) {
      const res = await request(app.getHttpServer())
        .post('/graphql')
        .set({
          host: 'api.example',
          connection: 'Upgrade, HTTP2-Settings',
          upgrade: 'h2c',
          'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA',
        })
        .send({ query: '{ greeting }' })
        .expect(200);
      expect(res.body).toEqual({ data: { greeting: 'hello' } });
    }
    expect(runs).toBe(1);
  });
});
