import { afterEach, describe, expect, it } from 'vitest';
import { UploadLedger } from '../../agent/watcher/upload-ledger.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

let dir: TempDir | undefined;
afterEach(async () => {
  await dir?.remove();
  dir = undefined;
});

describe('upload ledger', () => {
  it('lists verified files oldest first; of one mtime, splits by index and metadata.yaml last', async () => {
    dir = await createTempDir('ledger');
    const ledger = new UploadLedger(dir.path);
    try {
      const entry = (name: string, mtimeMs: number, verifiedAt: number) => ({
        localPath: `/rec/${name}`,
        remotePath: name,
        size: 1,
        mtimeMs,
        ino: verifiedAt,
        sha256: 'a'.repeat(64),
        verifiedAt,
      });
      // Verified in the order two concurrent uploads happened to finish, not in recording order.
      for (const [n, name] of ['b/b_10.db3', 'b/metadata.yaml', 'b/b_9.db3', 'b/b_1.db3', 'a/a_0.db3'].entries()) {
        ledger.record(entry(name, name.startsWith('a/') ? 1000 : 2000.5, n));
      }
      expect([...ledger.oldestFirst()].map((e) => e.remotePath)).toEqual([
        'a/a_0.db3',
        'b/b_1.db3',
        'b/b_9.db3',
        'b/b_10.db3',
        'b/metadata.yaml',
      ]);
    } finally {
      ledger.close();
    }
  });
});
