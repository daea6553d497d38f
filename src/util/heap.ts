// Binary min-heap keyed by a number, ties broken by a string so order is deterministic.
export class MinHeap<T> {
  private readonly items: { key: number; tie: string; value: T }[] = [];

  get size(): number {
    return this.items.length;
  }

  push(key: number, tie: string, value: T): void {
    const items = this.items;
    items.push({ key, tie, value });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  peek_key(): number | null {
    return this.items.length === 0 ? null : this.items[0]!.key;
  }

  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(l, m)) m = l;
        if (r < items.length && this.less(r, m)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top.value;
  }

  private less(a: number, b: number): boolean {
    const x = this.items[a]!;
    const y = this.items[b]!;
    return x.key < y.key || (x.key === y.key && x.tie < y.tie);
  }
}
