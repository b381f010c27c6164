// Service worker of the crew app (a module worker), rendered by Flask.
// Precaches the whole shell under a content-hash version; cache-first for the
// shell; API and sign-in network-only; Background Sync delivers the outbox
// under the same Web Lock the pages use, so nothing is sent twice at once.
// The build's bundle of js/worker.js, or that module itself while the bundle
// is stale (crew.shell; a fixed /static/ path, so a plain string literal).
import { CHANNEL_NAME, deliver } from "{{ worker_module }}";

const CACHE_VERSION = {{ cache_version|tojson }};
const CACHE_PREFIX = "cabin-notes-shell-";
const CACHE_NAME = CACHE_PREFIX + CACHE_VERSION;
const PRECACHE = {{ precache_urls|tojson }};
const PRECACHE_SET = new Set(PRECACHE);
// SHA-256 (hex) of what each static URL serves in this version.
const DIGESTS = {{ digests|tojson }};
const NETWORK_ONLY = ["/api/", "/auth/", "/review", "/triage", "/admin", "/sw.js"];

// A file of this version, only if it is the file this version names: a
// deploy landing during the install (this worker from the old server, a file
// from the new) would otherwise make a mixed shell, e.g. a bundle importing a
// chunk that is not precached, which cannot start offline. The install then
// fails and the browser tries again at its next check.
async function fetchChecked(url) {
  // No cookies: the shell is the same for everyone and must not carry anyone's session state.
  const response = await fetch(new Request(url, { cache: "reload", credentials: "omit" }));
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  if (DIGESTS[url]) {
    const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", await response.clone().arrayBuffer()));
    const hex = Array.from(sum, (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex !== DIGESTS[url]) throw new Error(`${url} is not the file of version ${CACHE_VERSION}`);
  }
  // The page has no digest (it is rendered, from settings too): it names its version.
  if (url === "/" && !(await response.clone().text()).includes(CACHE_VERSION)) {
    throw new Error(`/ is not the page of version ${CACHE_VERSION}`);
  }
  return response;
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      // Every file checked before any is stored (like cache.addAll): a failed
      // install leaves no part of a newer shell in a cache that is in use.
      const responses = await Promise.all(PRECACHE.map(fetchChecked));
      const cache = await caches.open(CACHE_NAME);
      await Promise.all(responses.map((response, i) => cache.put(PRECACHE[i], response)));
    })()
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(names.filter((n) => n.startsWith(CACHE_PREFIX) && n !== CACHE_NAME).map((n) => caches.delete(n)));
      await self.clients.claim();
    })()
  );
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "skip-waiting") self.skipWaiting();
  if (data.type === "version" && event.ports && event.ports[0]) event.ports[0].postMessage({ version: CACHE_VERSION });
});

async function fromCache(request, key) {
  const cache = await caches.open(CACHE_NAME);
  const hit = await cache.match(key || request, { ignoreSearch: true });
  if (hit) return hit;
  return fetch(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname.startsWith("/auth/") && fromTheApp(request)) {
    // Signing in needs the network. Offline, back to the app and its notes:
    // an app on the Home Screen has no back button to leave an error page.
    event.respondWith(fetch(request).catch(() => Response.redirect("/", 303)));
    return;
  }
  if (NETWORK_ONLY.some((p) => url.pathname.startsWith(p))) return;
  if (request.mode === "navigate") {
    if (url.pathname === "/") event.respondWith(fromCache(request, "/"));
    return;
  }
  if (PRECACHE_SET.has(url.pathname)) event.respondWith(fromCache(request, url.pathname));
});

// The app's own page asked: the referrer's origin too, since a link on another
// site's front page (its referrer cut to its origin by the default policy) has path "/".
function fromTheApp(request) {
  if (!request.referrer) return false;
  const from = new URL(request.referrer);
  return from.origin === self.location.origin && from.pathname === "/";
}

function tellPages(message) {
  try {
    const ch = new BroadcastChannel(CHANNEL_NAME);
    ch.postMessage(message);
    ch.close();
  } catch {
    /* pages re-read on their own */
  }
}

self.addEventListener("sync", (event) => {
  if (event.tag !== "outbox") return;
  event.waitUntil(
    deliver().then((summary) => {
      tellPages({ type: "outbox-changed", from: "sync", summary });
      // A failed sync makes the browser retry later with its own back-off.
      if (summary.status === "transient") throw new Error("delivery failed; will retry");
    })
  );
});
