import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import type { BagDetail, BagView } from '../../common/protocol/fleet-views.js';
import type { SessionStore } from '../sessions/session-store.js';
import { bagView } from './fleet-view.js';

/** Bags a listing returns at most. */
export const MAX_BAGS_LISTED = 10_000;

export interface BagListQuery {
  /** Only this uploader's bags (always set for an uploader's own request). */
  uploader: string | undefined;
  complete: boolean | undefined;
  limit: number;
}

/** GET /v1/bags: bags, most recently changed first. */
export async function listBagViews(store: SessionStore, query: BagListQuery): Promise<BagView[]> {
  return (await store.fleet.listBags(query)).map(bagView);
}

/** GET /v1/bags/<uploader>/<bag>: one bag with every listed and verified file (FILE_NOT_FOUND when there is none). */
export async function bagDetail(store: SessionStore, uploader: string, folder: string): Promise<BagDetail> {
  const bag = await store.fleet.getBag(uploader, folder);
  if (!bag) {
    throw new UploadError('FILE_NOT_FOUND', `No bag ${JSON.stringify(folder)} of uploader ${uploader} on this server`);
  }
  const listed = new Set(bag.expected ?? []);
  const files = await store.fleet.filesIn(uploader, folder);
  return {
    ...bagView(bag),
    listed: bag.expected,
    missingAll: bag.missing,
    verified: files
      .map((file) => {
        const name = path.posix.basename(file.path);
        return {
          name,
          size: file.size,
          sha256: file.sha256,
          completedAt: new Date(file.completedAt).toISOString(),
          listed: listed.has(name),
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name)),
    storageIdentifier: bag.storageIdentifier,
    eventId: bag.eventId,
  };
}
