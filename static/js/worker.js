// What the service worker (templates/crew/sw.js) imports, in one module: the
// install step bundles it with everything it imports into bundles/worker.js.
export { CHANNEL_NAME } from "./outbox/store.js";
export { deliver } from "./outbox/scheduler.js";
