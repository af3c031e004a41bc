import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';

/**
 * Holds the DynamoDB client: the application's own (used as is, never destroyed), or one created
 * on first use from `clientConfig` and destroyed by {@link LazyDynamoClient.destroy}.
 */
export class LazyDynamoClient {
  private client: DynamoDBClient | undefined;
  private destroyed = false;

  constructor(
    private readonly config: DynamoDBClientConfig,
    supplied?: DynamoDBClient,
    /** Applied to a client this holder creates, before its first call. */
    private readonly prepare?: (client: DynamoDBClient) => void,
  ) {
    this.client = supplied;
    this.owned = supplied === undefined;
  }

  /** Whether this holder created the client (and so must destroy it). */
  readonly owned: boolean;

  /** The client, created on the first call; creation is synchronous, so it happens once. */
  get(): DynamoDBClient {
    if (this.client === undefined) {
      if (this.destroyed)
        throw new Error('the DynamoDB client of nestjs-dynamo-cache was already destroyed');
      this.client = new DynamoDBClient(this.config);
      this.prepare?.(this.client);
    }
    return this.client;
  }

  /** Destroys the client if this holder created it. */
  destroy(): void {
    this.destroyed = true;
    if (this.owned && this.client !== undefined) {
      this.client.destroy();
      this.client = undefined;
    }
  }
}
