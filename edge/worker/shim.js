// Entry module of the Worker: the wasm-bindgen output (build/index.js) exports the fetch handler and
// the Durable Object classes; workerd wants them as a module's default export and named exports.
import * as edge from "./index.js";

export default {
  fetch(request, env, ctx) {
    return edge.fetch(request, env, ctx);
  },
};

export const Room = edge.Room;
export const Registry = edge.Registry;
