import type { INestApplication } from '@nestjs/common';
import request from 'supertest';

/** What a GraphQL HTTP answer carries. */
export interface GraphqlAnswer {
  data?: Record<string, unknown>;
  errors?: { message: string }[];
}

/**
 * Posts GraphQL operations to `app`'s `/graphql`, all with one `Host` (a route's key holds its
 * host: supertest's ephemeral ports would make each request another key), expecting HTTP 200.
 *
 * @example
 * const gql = graphqlClient(app);
 * const { data } = await gql('{ rate(from: "EUR", to: "USD") { value } }');
 */
export function graphqlClient(
  app: INestApplication,
): (query: string, variables?: Record<string, unknown>) => Promise<GraphqlAnswer> {
  return async (query, variables = {}) => {
    const res = await request(app.getHttpServer())
      .post('/graphql')
      .set({ host: 'api.example' })
      .send({ query, variables })
      .expect(200);
    return res.body as GraphqlAnswer;
  };
}
