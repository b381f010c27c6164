// Entry for the bundled IndexedDB helper (npm run build -> static/vendor/idb.js).
export { openDB } from "idb";
