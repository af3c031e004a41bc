import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import type { Provider } from '@nestjs/common';
import {
  Args,
  Field,
  GraphQLModule,
  Info,
  Int,
  ObjectType,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { Test } from '@nestjs/testing';
import {
  GraphQLScalarType,
  Kind,
  type FieldNode,
  type GraphQLResolveInfo,
  type InlineFragmentNode,
} from 'graphql';
import { DynamoCached, DynamoCacheModule, DynamoCacheService } from '../lib/index.js';
import { useTestDynamo } from './support/dynamo-server.js';
import { graphqlClient } from './support/graphql-client.js';

// A 64-bit id scalar (snowflake ids), as graphql-scalars' BigInt: literals parsed exactly.
const Long = new GraphQLScalarType({
  name: 'Long',
  serialize: (v) => String(v),
  parseValue: (v) => BigInt(v as string),
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.INT && ast.kind !== Kind.STRING) throw new Error('not a Long');
    return BigInt(ast.value);
  },
});

const POST_IDS = [9007199254740993n, 9007199254740995n];

@ObjectType()
class TUser {
  @Field() id!: string;
  prefetched: string[] = [];
}
@Resolver(() => TUser)
class TimelineResolver {
  @Query(() => TUser)
  @DynamoCached(60)
  timeline(@Args('id') id: string, @Info() info: GraphQLResolveInfo): TUser {
    // Look-ahead: fetch only the posts after `since`.
    const sel = info.fieldNodes[0].selectionSet!.selections.find(
      (s) => s.kind === 'Field' && s.name.value === 'posts',
    ) as FieldNode | undefined;
    const v = sel?.arguments?.find((a) => a.name.value === 'since')?.value;
    const since = v?.kind === Kind.INT ? BigInt(v.value) : 0n;
    return Object.assign(new TUser(), {
      id,
      prefetched: POST_IDS.filter((p) => p > since).map(String),
    });
  }
  @ResolveField(() => [String])
  posts(@Parent() u: TUser, @Args('since', { type: () => Long }) _since: bigint): string[] {
    return u.prefetched;
  }
}

@ObjectType()
class DNode {
  @Field(() => Int) level!: number;
  @Field(() => DNode, { nullable: true }) child?: DNode | null;
}
/** The `child` field selected under `set`, through any inline fragments. */
function childOf(
  set: FieldNode['selectionSet'] | InlineFragmentNode['selectionSet'],
): FieldNode | undefined {
  for (const s of set?.selections ?? []) {
    if (s.kind === 'Field' && s.name.value === 'child') return s;
    if (s.kind === 'InlineFragment') {
      const found = childOf(s.selectionSet);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
function selectedDepth(info: GraphQLResolveInfo): number {
  let depth = 0;
  let node: FieldNode | undefined = info.fieldNodes[0];
  while ((node = childOf(node?.selectionSet)) !== undefined) depth++;
  return depth;
}
@Resolver(() => DNode)
class TreeResolver {
  @Query(() => DNode)
  @DynamoCached(60)
  tree(@Args('root') _root: string, @Info() info: GraphQLResolveInfo): DNode {
    // Look-ahead: load exactly as many levels as the query selects.
    const depth = selectedDepth(info);
    let node: DNode | null = null;
    for (let level = depth; level >= 0; level--) {
      node = Object.assign(new DNode(), { level, child: node });
    }
    return node!;
  }
}

function nested(levels: number, fragments = 1): string {
  let s = 'level';
  // Each level through inline fragments (a client's generated fragments look like this).
  for (let i = 0; i < levels; i++) {
    let inner = `child { ${s} }`;
    for (let f = 0; f < fragments; f++) inner = `... on DNode { ${inner} }`;
    s = `level ${inner}`;
  }
  return s;
}
function deepest(data: unknown): number {
  let n = 0;
  let node = (data as { tree: { child?: unknown } }).tree as { child?: unknown } | null;
  while (node && (node as { child?: unknown }).child) {
    n++;
    node = (node as { child: { child?: unknown } }).child;
  }
  return n;
}

describe('GraphQL @Info() selection keys at their edges, two instances on one table', () => {
  const fx = useTestDynamo();
  async function gqlApp(table: string, providers: Provider[]) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        DynamoCacheModule.forRoot({ table, client: fx.dynamo.client() }),
        GraphQLModule.forRoot<ApolloDriverConfig>({
          driver: ApolloDriver,
          autoSchemaFile: true,
        }),
      ],
      providers,
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    fx.apps.push(app);
    await app.init();
    return { settle: () => app.get(DynamoCacheService).settle(), gql: graphqlClient(app) };
  }

  it('nested 64-bit literal arguments: posts(since: …992) and posts(since: …993) are two entries', async () => {
    const table = await fx.dynamo.table();
    const [a, b] = [
      await gqlApp(table, [TimelineResolver]),
      await gqlApp(table, [TimelineResolver]),
    ];
    const r1 = await a.gql(`{ timeline(id: "ann") { id posts(since: 9007199254740992) } }`);
    expect(r1.errors).toBeUndefined();
    expect(r1.data).toEqual({
      timeline: { id: 'ann', posts: ['9007199254740993', '9007199254740995'] },
    });
    await a.settle();
    const r2 = await b.gql(`{ timeline(id: "ann") { id posts(since: 9007199254740993) } }`);
    expect(r2.data).toEqual({ timeline: { id: 'ann', posts: ['9007199254740995'] } });
  });

  it('17 levels of child through inline fragments (34 levels of selection) and 20 levels are two entries', async () => {
    const table = await fx.dynamo.table();
    const [a, b] = [await gqlApp(table, [TreeResolver]), await gqlApp(table, [TreeResolver])];
    const r1 = await a.gql(`{ tree(root: "r") { ${nested(17)} } }`);
    expect(r1.errors).toBeUndefined();
    expect(deepest(r1.data)).toBe(17);
    await a.settle();
    const r2 = await b.gql(`{ tree(root: "r") { ${nested(20)} } }`);
    expect(r2.errors).toBeUndefined();
    expect(deepest(r2.data)).toBe(20);
  });

  it('a selection deeper than the key follows (10 levels through 7 fragments each) runs uncached: 10 and 11 levels each get their own tree', async () => {
    const table = await fx.dynamo.table();
    const [a, b] = [await gqlApp(table, [TreeResolver]), await gqlApp(table, [TreeResolver])];
    const r1 = await a.gql(`{ tree(root: "r") { ${nested(10, 7)} } }`);
    expect(r1.errors).toBeUndefined();
    expect(deepest(r1.data)).toBe(10);
    await a.settle();
    const r2 = await b.gql(`{ tree(root: "r") { ${nested(11, 7)} } }`);
    expect(r2.errors).toBeUndefined();
    expect(deepest(r2.data)).toBe(11);
  });
});
