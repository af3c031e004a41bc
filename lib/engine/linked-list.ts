/** What a {@link LinkedList} needs of its nodes: their own links (no wrapper object per node). */
export interface ListNode<T> {
  prev: T | undefined;
  next: T | undefined;
}

/**
 * A doubly linked list of nodes that carry their own links: adding at the end and removing
 * anywhere cost O(1) and allocate nothing. For sets that gain and lose an entry on every cache
 * call, where a `Map` emptied and refilled would allocate a new table each time.
 *
 * @example
 * const list = new LinkedList<Job>();
 * list.push(job);
 * for (let j = list.head; j !== undefined; j = j.next) visit(j);
 * list.remove(job);
 */
export class LinkedList<T extends ListNode<T>> {
  head: T | undefined = undefined;
  tail: T | undefined = undefined;

  /** Adds `node` at the end. */
  push(node: T): void {
    const tail = this.tail;
    if (tail === undefined) this.head = node;
    else {
      tail.next = node;
      node.prev = tail;
    }
    this.tail = node;
  }

  /** Takes `node` out (a node not in the list, or removed already, is left alone). */
  remove(node: T): void {
    const { prev, next } = node;
    if (prev === undefined && this.head !== node) return;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next === undefined) this.tail = prev;
    else next.prev = prev;
    node.prev = node.next = undefined;
  }
}
