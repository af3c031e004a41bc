import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { Group } from './run.js';

/** The HTTP group needs DynamoCacheInterceptor; filled in once it exists. */
export async function httpGroup(_opts: {
  clientConfig: DynamoDBClientConfig;
  table: string;
  quick: boolean;
}): Promise<Group | undefined> {
  return undefined;
}
