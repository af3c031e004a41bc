import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { createParamDecorator, type ExecutionContext, type Provider } from '@nestjs/common';
import {
  Args,
  Field,
  GqlExecutionContext,
  GraphQLModule,
  ObjectType,
  Query,
  Resolver,
} from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import type { FieldNode, GraphQLResolveInfo } from 'graphql';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { graphqlClient } from './support/graphql-client.js';

/*
 * A resolver that reads the selection through a parameter decorator of its own (the look-ahead
 * decorators of ORM integrations: `@Fields()`, `@PrismaSelect()`), built on GqlExecutionContext,
 * rather than through @Info(): it fetches only what is selected, as one taking @Info() may.
 */

/** The names of the fields selected directly below the resolver's field. */
const Fields = createParamDecorator((_: unknown, ctx: ExecutionContext): string[] => {
  const info = GqlExecutionContext.create(ctx).getInfo<GraphQLResolveInfo>();
  return (info.fieldNodes[0]!.selectionSet?.selections ?? [])
    .filter((s): s is FieldNode => s.kind === 'Field')
    .map((s) => s.name.value);
});

@ObjectType()
class CpUser {
  @Field() id!: string;
  @Field({ nullable: true }) email?: string;
}

@Resolver(() => CpUser)
class CpUserResolver {
  runs = 0;

  @Query(() => CpUser)
  @DynamoCached(60)
  cpUser(@Args('id') id: string, @Fields() fields: string[]): CpUser {
    this.runs++;
    // SELECT only the selected columns
    const user = Object.assign(new CpUser(), { id });
    if (fields.includes('email')) user.email = `${id}@example.com`;
    return user;
  }
}

describe('GraphQL: a resolver reading the selection through its own parameter decorator (two instances)', () => {
  const fx = useTestDynamo();
  async function gqlApp(table: string, providers: Provider[]) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() }),
        GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true }),
      ],
      providers,
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.init();
    return { app, settle: () => app.get(DynamoCacheService).settle(), gql: graphqlClient(app) };
  }

  it('{ id } on A, then { id email } on B: B answers the email (another entry), not the narrower value', async () => {
    const table = await fx.dynamo.table();
    const a = await gqlApp(table, [CpUserResolver]);
    const b = await gqlApp(table, [CpUserResolver]);
    expect(await a.gql('{ cpUser(id: "u1") { id } }')).toEqual({ data: { cpUser: { id: 'u1' } } });
    await a.settle();
    expect(await b.gql('{ cpUser(id: "u1") { id email } }')).toEqual({
      data: { cpUser: { id: 'u1', email: 'u1@example.com' } },
    });
    // The same selection again is still cached: B's entry, on A from DynamoDB.
    await b.settle();
    expect(await a.gql('{ cpUser(id: "u1") { id email } }')).toEqual({
      data: { cpUser: { id: 'u1', email: 'u1@example.com' } },
    });
    expect(a.app.get(CpUserResolver).runs).toBe(1);
    expect(b.app.get(CpUserResolver).runs).toBe(1);
  });
});
