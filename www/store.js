// Autosave storage in IndexedDB, used by the worker. Two checkpoint slots and a "latest"
// pointer: a save writes the slot the pointer does not name, the pictures file when it is new,
// and the pointer, all in ONE transaction with strict durability, so a save cut off at any
// point leaves the previous checkpoint whole. Checkpoints are sealed with a CRC-32 in Rust; a
// damaged one falls back to the other slot.
const DB = 'gan-playground';
const VERSION = 1;

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

// Settles when `tx` commits or fails, with the request's error (a transaction's own `error` is
// still null while a request's error event is dispatched). Never left unhandled.
function done(tx) {
  const p = new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = (ev) => reject(ev.target.error || tx.error);
    tx.onabort = () => reject(tx.error || new DOMException('the save was aborted', 'AbortError'));
  });
  p.catch(() => {});
  return p;
}

export async function openStore() {
  if (!self.indexedDB) throw new Error('this browser has no IndexedDB');
  const open = indexedDB.open(DB, VERSION);
  open.onupgradeneeded = () => {
    const db = open.result;
    for (const name of ['checkpoints', 'pictures', 'meta']) {
      if (!db.objectStoreNames.contains(name)) db.createObjectStore(name);
    }
  };
  const db = await request(open);
  return new Store(db);
}

class Store {
  constructor(db) {
    this.db = db;
    this.failNext = null; // a DOMException name to throw on the next save (tests only)
  }

  async pointer() {
    const tx = this.db.transaction('meta', 'readonly');
    return (await request(tx.objectStore('meta').get('latest'))) || null;
  }

  // Saves `checkpoint` ({bytes, step, digest, savedAt, grid, picturesId}) and, when given and
  // not yet stored, `pictures` ({id, bytes}). Resolves once the transaction is durable.
  async save(checkpoint, pictures) {
    if (this.failNext) {
      const name = this.failNext;
      this.failNext = null;
      throw new DOMException(`simulated ${name}`, name);
    }
    const tx = this.db.transaction(['checkpoints', 'pictures', 'meta'], 'readwrite', { durability: 'strict' });
    const finished = done(tx);
    try {
      // The pointer is read in the same transaction, so two tabs saving at once cannot both
      // write one slot. Only IndexedDB requests are awaited in here (anything else would let
      // the transaction commit early).
      const before = (await request(tx.objectStore('meta').get('latest'))) || null;
      const slot = before && before.slot === 'a' ? 'b' : 'a';
      const ids = { ...(before ? before.pictures : {}), [slot]: checkpoint.picturesId || null };
      tx.objectStore('checkpoints').put(checkpoint, slot);
      const store = tx.objectStore('pictures');
      if (pictures) store.put(pictures.bytes, pictures.id);
      // Pictures no slot refers to any more are dropped in the same transaction.
      const keys = await request(store.getAllKeys());
      for (const key of keys) if (!Object.values(ids).includes(key) && (!pictures || key !== pictures.id)) store.delete(key);
      tx.objectStore('meta').put({ slot, step: checkpoint.step, savedAt: checkpoint.savedAt, pictures: ids }, 'latest');
      await finished;
      return slot;
    } catch (e) {
      try { tx.abort(); } catch { /* already finished */ }
      // The transaction's own error names the cause better than an aborted request's.
      throw await finished.then(() => e, (txError) => txError || e);
    }
  }

  async hasPictures(id) {
    const tx = this.db.transaction('pictures', 'readonly');
    return (await request(tx.objectStore('pictures').count(id))) > 0;
  }

  // The stored checkpoints, newest first: [{slot, checkpoint, pictures}] (pictures: bytes or null).
  async candidates() {
    const latest = await this.pointer();
    if (!latest) return [];
    const order = latest.slot === 'a' ? ['a', 'b'] : ['b', 'a'];
    const tx = this.db.transaction(['checkpoints', 'pictures'], 'readonly');
    const out = [];
    for (const slot of order) {
      const checkpoint = await request(tx.objectStore('checkpoints').get(slot));
      if (!checkpoint) continue;
      const pictures = checkpoint.picturesId ? (await request(tx.objectStore('pictures').get(checkpoint.picturesId))) || null : null;
      out.push({ slot, checkpoint, pictures });
    }
    return out;
  }

  // Forgets every checkpoint ("Start fresh" after the prompt keeps them until the next save).
  async clear() {
    const tx = this.db.transaction(['checkpoints', 'pictures', 'meta'], 'readwrite', { durability: 'strict' });
    const finished = done(tx);
    for (const name of ['checkpoints', 'pictures', 'meta']) tx.objectStore(name).clear();
    await finished;
  }
}
