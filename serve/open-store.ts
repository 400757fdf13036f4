/** Opens an index by its location: a PostgreSQL URL, else an index file. */
import { FileIndex, type StoreOptions } from './file-store.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres-store.js';
import { isPostgresUrl, type IndexStore } from './store.js';

export async function openIndexStore(location: string, o: StoreOptions & PostgresStoreOptions = {}): Promise<IndexStore> {
  return isPostgresUrl(location) ? PostgresStore.open(location, o) : FileIndex.open(location, o);
}
