/**
 * A binary min-heap whose items carry their slot, so a moved deadline sifts in place.
 *
 * Why a heap: sweep must cost what expired, not what is stored. Deadlines are arbitrary epoch ms
 * (the idle one slides, the absolute one does not) spread over days, so a timing wheel would need
 * coarse buckets (late expiry, or rescanning a bucket's live members) or several levels. The heap
 * is exact: O(log n) per write, O(k log n) for a sweep that removes k. Updating in place instead of
 * lazy deletion leaves no stale nodes behind, so every touch costs no extra memory.
 */
export function createExpiryHeap<T extends { slot: number }>(less: (a: T, b: T) => boolean) {
  const items: T[] = [];
  const at = (slot: number) => items[slot] as T;
  function place(item: T, slot: number): void {
    items[slot] = item;
    item.slot = slot;
  }
  function up(slot: number): number {
    const item = at(slot);
    let current = slot;
    while (current > 0) {
      const parent = (current - 1) >> 1;
      if (!less(item, at(parent))) break;
      place(at(parent), current);
      current = parent;
    }
    place(item, current);
    return current;
  }
  function down(slot: number): void {
    const item = at(slot);
    let current = slot;
    for (;;) {
      const left = 2 * current + 1;
      if (left >= items.length) break;
      const child = left + 1 < items.length && less(at(left + 1), at(left)) ? left + 1 : left;
      if (!less(at(child), item)) break;
      place(at(child), current);
      current = child;
    }
    place(item, current);
  }
  function update(item: T): void {
    if (up(item.slot) === item.slot) down(item.slot);
  }
  return {
    push(item: T): void {
      place(item, items.length);
      up(item.slot);
    },
    update,
    remove(item: T): void {
      const slot = item.slot;
      if (slot < 0 || items[slot] !== item) return;
      const last = items.pop() as T;
      item.slot = -1;
      if (last === item) return;
      place(last, slot);
      update(last);
    },
    peek: (): T | undefined => items[0],
    get size() {
      return items.length;
    },
  };
}
