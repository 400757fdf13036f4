/** Opens an index by its location: a PostgreSQL URL, else an index file. */
import { FileStore, type StoreOptions } from './file-store.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres-store.js';
import { isPostgresUrl, type IndexStore } from './store.js';

export async function openIndexStore(location: string, o: StoreOptions & PostgresStoreOptions = {}): Promise<IndexStore> {
  return isPostgresUrl(location) ? PostgresStore.open(location, o) : FileStore.open(location, o);
}
