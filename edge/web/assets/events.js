// Typed events for the page's plain classes: an EventTarget whose event names and `detail` types
// are checked by tsc (docs/browser.md). The events stay real `CustomEvent`s, so `addEventListener`
// works too (e.g. from the console).

/**
 * @template {Record<string, unknown>} Events maps each event name to its `detail` type
 */
export class Emitter extends EventTarget {
  /**
   * Listen to `type`; returns a function that stops listening.
   * @template {keyof Events & string} K
   * @param {K} type
   * @param {(detail: Events[K]) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    /** @param {Event} ev */
    const wrapped = (ev) => listener(/** @type {CustomEvent<Events[K]>} */ (ev).detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  /**
   * @template {keyof Events & string} K
   * @param {K} type
   * @param {Events[K]} detail
   */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
